"""The web console: every event, why a delivery was refused, where each consumer stands, and
(with ``console.actions``) replay and redrive. Served by ``hookstream console``.

- ``app``: routes, the token check, content negotiation (every page answers JSON too).
- ``auth``: the token, the login cookie, CSRF.
- ``events``: the Events list, scanned on the server newest first, with cursors.
- ``present``: an event as data: masked headers, the body's views, the typed view.
- ``consumers``: group state, lag, dead letters, and one event's state per consumer.
- ``overview``, ``tail``, ``actions``: the Overview page, the live tail (SSE), the actions.
- ``commands``: the ``hookstream console`` command.
"""
