"""Low-level CPU kernels and their controls: rewritten convolution gradients (`convgrad`), the
lean layers of the supernet (`lean`) and thread-count control (`threads`). Each module says
what it replaces, why, the gain measured and on which device it applies. Pure torch."""
