"""The benchmarks behind `covey bench TARGET`: each module measures one thing and compares it
with a baseline taken in the same run (model: covey vs llama-cpp-python; sync; clone; import;
delegate; api; warm). Speed and memory targets live here, not in timed unit tests."""
