"""Left-to-right writing on the bundled autoregressive LM: plain sampling, and FUDGE control."""
