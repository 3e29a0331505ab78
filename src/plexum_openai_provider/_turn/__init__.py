"""One turn, engine-independent: event mapping, deadlines, cancel, resume, blocks, thread record."""
