"""One Evaluate run; run in a fresh interpreter by evaluate.py.

usage: _measure_evaluate.py {tgispy|dspy24|dspy34} PORT EXAMPLES THREADS
Prints one JSON object: {"examples_per_s": ..., "seconds": ..., "score": ...}.
"""

from __future__ import annotations

import json
import logging
import sys
import time


def main() -> None:
    tool, port, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    logging.disable(logging.WARNING)
    if tool == "tgispy":
        import tgispy as dspy
        from tgispy.evaluate import answer_exact_match

        lm = dspy.HFClientTGI(model="canned/model", port=port, url="http://127.0.0.1", cache=False)
    elif tool == "dspy24":
        import dspy
        from dspy.evaluate import answer_exact_match

        lm = dspy.HFClientTGI(model="canned/model", port=port, url="http://127.0.0.1")
    else:  # DSPy 3.x: no TGI client; TGI's OpenAI-compatible chat route through litellm
        import dspy
        from dspy.evaluate import answer_exact_match

        lm = dspy.LM(
            "openai/canned",
            api_base=f"http://127.0.0.1:{port}/v1",
            api_key="none",
            cache=False,
        )
    dspy.configure(lm=lm)
    program = dspy.ChainOfThought("question -> answer")
    devset = [
        dspy.Example(
            question=f"Question {i}: what is the capital of France?", answer="Paris"
        ).with_inputs("question")
        for i in range(n)
    ]
    evaluate = dspy.Evaluate(devset=devset, metric=answer_exact_match, num_threads=threads)
    evaluate(program, devset=devset[:threads])  # warm up: connections, /info, imports
    start = time.perf_counter()
    result = evaluate(program)
    elapsed = time.perf_counter() - start
    score = getattr(result, "score", result)  # DSPy 3 returns an EvaluationResult
    assert score == 100.0, result  # every example answered from one request
    print(json.dumps({"examples_per_s": n / elapsed, "seconds": elapsed, "score": score}))


if __name__ == "__main__":
    main()
