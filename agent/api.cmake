add_library(sealroot_agent INTERFACE)  # placeholder until the agent API issue
