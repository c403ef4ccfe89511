"""The gatekeeper's decisions, pure: ``machine.step(state, input, config) -> (state, effects)``.

``state`` (everything remembered), ``inputs`` (what can happen), ``effects`` (what must be done),
``machine`` and ``commands`` (the steps), ``decisions`` (the steps every path ends in), and the pure
pieces they use: ``decide_promotion`` (the gate), ``evidence``, ``shadow``, ``detect_fire``. It imports
no I/O library: adapters (``services/gatekeeper/gatekeeper.py`` and the modules it drives) carry the
effects out.
"""
