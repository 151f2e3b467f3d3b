"""Arguments and result of ``hello.greet``: one copy, used by the endpoint and the CLI."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GreetArgs(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="who to greet")
    shout: bool = Field(default=False, description="upper-case the greeting")


class Greeting(BaseModel):
    text: str
    endpoint: str
    count: int = Field(description="greetings this endpoint has given since it started")
