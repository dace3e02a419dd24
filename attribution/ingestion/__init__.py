"""Stage 2, the web side: store the raw postback durably, answer, hand its id to the workers."""
