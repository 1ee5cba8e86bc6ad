"""The method itself, task-agnostic and free of I/O: paths, samplers, guidance, source encoders, velocity networks,
and the CrossFlow and baseline models built from them."""
