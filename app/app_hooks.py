"""Server hooks of ``panel serve app`` (Bokeh's directory-app hooks, run by the server itself)."""


def on_server_loaded(server_context):
    """At server start, before any page is asked for: present the CPU as one JAX device per core,
    as ``mothlab train`` does (before JAX is imported), so that the Train tab shards the networks
    the same way and resumes a run the command line started; then import the app's first page
    and, unless a page is asked for within 3 s, compile the simulator (from the compile cache),
    in a background thread (see :func:`mothlab.ui.app.prepare_server`)."""
    from mothlab.runtime import use_all_cores

    use_all_cores()
    from mothlab.ui.app import prepare_server

    prepare_server()


def on_session_created(session_context):
    """A page was asked for: it is built before the simulator compiles (see prepare_server)."""
    from mothlab.ui.app import PAGE_ASKED

    PAGE_ASKED.set()
