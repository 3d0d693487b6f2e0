"""Networks of groups (issue 15): a network is a local ``Group`` actor whose
members are groups on any node. ``directory`` validates what an application
says about a group; ``members`` holds the operations (CLI, API); ``handlers``
the inbound membership activities; ``relay`` repeats members' public posts to
the network's followers (FEP-1b12 style); ``calls`` reads members' stored
calls for the network's views. FEDERATION.md, "Networks".
"""
