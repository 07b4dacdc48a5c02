"""The engine runs a plan: scheduling (threads, the event loop, batches of small files), sending (whole, in
parts, resumed, copied server-side), limits (rate, byte budget, buffers), sizes (what a provider takes) and
results (what a run adds up to). This file imports nothing, so no module reaches its siblings through it."""
