"""Names vulture reports as unused that are used: ``make lint`` runs

    vulture orbit_protocol orbit_client orbit_broker orbit_endpoint orbit_plugins orbit_cli \
        vulture_whitelist.py --min-confidence 60

Vulture matches by name only, so ``_.name`` below marks every definition called ``name`` as
used. Add a name here only when something vulture cannot see uses it (a decorator registers
it, a library calls it, a test or a client reads it); delete code that is really dead.
"""


class _Whitelist:
    def __getattr__(self, name: str) -> None:
        return None


_ = _Whitelist()

# -- typer commands: registered by @app.command ------------------------------------------------
_.down  # orbit_cli/commands/broker.py
_.rotate_cert  # orbit_cli/commands/broker.py
_.lint  # orbit_cli/commands/broker.py
_.list_jobs  # orbit_plugins/psij/cli.py
_.logs  # orbit_plugins/psij/cli.py
_.list_plugins  # orbit_cli/commands/plugins.py
_.rm  # orbit_plugins/staging/cli.py
_.list_tasks  # orbit_plugins/tasks/cli.py, orbit_plugins/globus/cli.py
_.wait_cmd  # orbit_plugins/globus/cli.py
_.register_cmd  # orbit_plugins/globus/cli.py
_.expose_value  # orbit_cli/options.py: a click attribute, read by click

# -- FastAPI routes: registered by @router.get / @app.get -------------------------------------
_.whoami  # orbit_gateway/api.py
_.asyncapi_document  # orbit_gateway/app.py

# -- plugin operations: registered by @operation, called by name through the dispatcher --------
_.unregister  # globus
_.task_wait  # globus
_.rename  # globus
_.list_facilities  # iri
_.get_status  # iri
_.list_resources  # iri
_.get_resource  # iri
_.list_incidents  # iri
_.list_projects  # iri
_.list_allocations  # iri, queue_info
_.get_job_status  # iri, psij
_.submit_endpoint  # psij
_.put_begin  # staging
_.put_chunk  # staging
_.put_commit  # staging
_.put_abort  # staging
_.uploads  # staging (also a result field)
_.get_chunk  # staging
_.homedir  # sysinfo
_.host_role  # sysinfo
_.run_tasks  # tasks
_.wait_tasks  # tasks
_.cancel_all_tasks  # tasks

# -- entry points: loaded by "module:Class" strings ---------------------------------------------
_.ChildPlugin  # orbit_plugins/psij/child.py (the child endpoint's plugin, CHILD_PLUGIN)
_.QueueInfoPlugin  # orbit_plugins/queue_info/plugin.py (entry point orbit.plugins queue_info)

# -- pydantic and pydantic-settings: read by the library ---------------------------------------
_.model_config
_._valid_url  # @field_validator
_._valid_name  # @field_validator
_._valid_pools  # @field_validator
_._upper_level  # @field_validator
_._one_kind  # @model_validator
_._error_iff_failed  # @model_validator
_.get_field_value  # PydanticBaseSettingsSource
_.settings_customise_sources  # BaseSettings hook, called with these keyword arguments:
_.dotenv_settings
_.file_secret_settings

# -- fields of operation results and settings: read by clients, the Explorer, JSON consumers ---
_.pong  # orbit.ping
_.submission_id  # globus
_.nice_status  # globus
_.bytes_transferred  # globus
_.files_transferred  # globus
_.source_endpoint_id  # globus
_.destination_endpoint_id  # globus
_.request_time  # globus
_.completion_time  # globus
_.connected  # iri
_.forgotten_jobs  # iri
_.watched_jobs  # iri
_.inherit_environment  # iri job spec, sent to the facility
_.stdin_path  # iri job spec
_.pre_launch  # iri job spec
_.post_launch  # iri job spec
_.launcher  # iri job spec
_.jobs_queued  # queue_info
_.jobs_running  # queue_info
_.n_nodes  # queue_info
_.runtime  # queue_info job_allocation
_.mtime  # staging
_.created  # staging
_.eof  # staging
_.memory_utilization_percent  # sysinfo
_.memory_percent  # sysinfo
_.gpu_utilization_percent  # sysinfo
_.return_value  # tasks
_.return_encoding  # tasks
_.exception_pickled  # tasks

# -- signatures fixed by a protocol --------------------------------------------------------------
_.exc_type  # __exit__
_.chunksize  # concurrent.futures.Executor.map

# -- public API, and attributes set for their effect ---------------------------------------------
_.transient  # OrbitError.transient: may the same call succeed later (for callers)
_.__cause__  # orbit_plugins/tasks/client_tasks.py: the remote traceback of a failed task
_.row_factory  # sqlite3
_._current_user  # orbit_plugins/psij/launch.py: patches PSI/J's executor
_.dropped_replies  # AsyncOrbitClient: replies dropped from the wrong sender (for monitoring)

# -- used by the tests only (tests/ is not scanned) ----------------------------------------------
_.queue_leader  # LocalCluster: tests/integration/test_cluster.py
_.queue_members  # LocalCluster: tests/integration/test_cluster.py
_.restart  # LocalBroker: tests/integration/test_reliability.py
_.overview  # ManagementClient: tests/conftest.py
_.delete_vhost  # ManagementClient: tests/conftest.py
_.clear_topic_permissions  # ManagementClient: tests/integration/test_lint.py
_.auth_mechanism  # ConnectionInfo: tests/integration/test_tls.py
_.applied  # ProvisionResult: tests/integration/test_broker_infra.py

# orbit_amqp.memory: the in-memory broker's controls, used by tests and by embedders
_.add_user  # orbit_amqp/memory/broker.py
_.set_topic_permissions  # orbit_amqp/memory/broker.py
_.set_alarm  # orbit_amqp/memory/broker.py (tests/local/test_core.py)
# orbit_client/__init__.py: module __getattr__ (PEP 562) serves the moved feature names
_.__getattr__  # orbit_client/__init__.py
