// The Explorer page of the hello plugin: a name field, a Greet button, the answer, and the
// live list of `hello.greeted` events. Helpers come from the Explorer (../ui.js).
import { button, el, field, input, section } from "../ui.js";

export default function helloPage(ctx) {
  const name = input("name", { id: "hello-name", placeholder: "your name" });
  const answer = el("p", { id: "hello-answer", className: "hint" });
  const seen = el("ul", { id: "hello-events" });
  const greet = button("Greet", async () => {
    const reply = await ctx.call("greet", { name: name.value || "world" });
    answer.textContent = reply.ok ? reply.result.text : `[${reply.error.code}] ${reply.error.message}`;
  }, { id: "hello-greet" });
  ctx.on((f) => {
    if (f.topic === "greeted") seen.prepend(el("li", { textContent: `${f.data.by} greeted ${f.data.name}` }));
  });
  return [section("Greet", field("Name", name), greet, answer), section("Greetings seen", seen)];
}
