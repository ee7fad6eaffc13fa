"""Float64 NumPy reference: forward and hand-written backward for recurrent models."""
