"""``millrace demo``: the local stack, the telemetry service and the simulator, watched live.

``state`` and ``view`` are pure (what the terminal shows, from what was consumed); ``feed``
consumes Kafka into the state; ``children`` and ``infra`` start and stop processes; ``runner``
puts them together in the order that makes the flow visible from the first second.
"""
