"""Pure scheduling domain: the problem, the plan, greedy dispatch and the CP-SAT model.

Nothing here does I/O; the service's adapters build a :class:`~.model.Problem` from master data,
orders, machine states and shop-floor events, and publish the :class:`~.model.Plan` it yields.
"""
