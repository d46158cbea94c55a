"""`import prefopt` (python/): each binding against what the C++ side is known to
produce: the HF tokenizer vectors of shared/data, `prefopt logprobs` and
`prefopt grade` run on the same inputs, the reference.json of the shared tiny
models, the pass@k formula by hand, sandbox verdicts of a right and a wrong
HumanEval completion, and a few DPO steps against `prefopt train`. Negative
controls check that bad input raises prefopt.Error naming the place.

Run by ctest with Debian's /usr/bin/python3 and PYTHONPATH=build/python;
PREFOPT_EXE and PREFOPT_SHARED_DATA name the CLI and the shared data.
"""
import ctypes
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import prefopt

EXE = os.environ.get("PREFOPT_EXE", "")
DATA = os.environ.get("PREFOPT_SHARED_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
VOCAB = os.path.join(DATA, "tokenizers", "llama.cpp-vocab")
TMP = tempfile.mkdtemp(prefix="prefopt_python_test.%d." % os.getpid())


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def cli(*args, check=True):
    """Runs the prefopt CLI; returns (returncode, stdout, stderr)."""
    p = subprocess.run([EXE, *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError("prefopt %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p.returncode, p.stdout, p.stderr


def python(code):
    """Runs code in a fresh Debian python3 with this process's PYTHONPATH."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


def vectors(name):
    """The llama.cpp test strings of a vocab and the HF ids (no BOS/EOS) for each."""
    with open(os.path.join(VOCAB, "ggml-vocab-%s.gguf.inp" % name), "rb") as f:
        inputs = f.read().decode("utf-8").split("\n__ggml_vocab_test__\n")[:-1]
    with open(os.path.join(VOCAB, "ggml-vocab-%s.gguf.out" % name)) as f:
        ids = [[int(x) for x in line.split()] for line in f.read().split("\n")[: len(inputs)]]
    return inputs, ids


class Import(unittest.TestCase):
    def test_import_does_not_import_torch(self):
        p = python("import sys, prefopt; print('torch' in sys.modules, prefopt.__version__)")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split()[0], "False")

    def test_torch_and_prefopt_share_one_libtorch(self):
        # Debian's python3-torch and prefopt load the same libtorch_cpu.so, in either order.
        code = (
            "import {a}, {b}, torch, prefopt\n"
            "maps = {{l.split()[-1] for l in open('/proc/self/maps') if 'libtorch_cpu' in l}}\n"
            "print(len(maps))\n"
            "x = torch.ones(3, 4) @ torch.ones(4, 2)\n"
            "print(float(x.sum()))\n"
            "print(prefopt.pass_at_k(4, 1, 2))\n"
        )
        for a, b in (("torch", "prefopt"), ("prefopt", "torch")):
            p = python(code.format(a=a, b=b))
            if "No module named 'torch'" in p.stderr:
                self.skipTest("python3-torch is not installed")
            self.assertEqual(p.returncode, 0, "import %s, %s: %s" % (a, b, p.stderr))
            lines = p.stdout.split()
            self.assertEqual(lines[0], "1", "one libtorch_cpu mapping")
            self.assertEqual(float(lines[1]), 24.0)
            self.assertAlmostEqual(float(lines[2]), 0.5)

    def test_cpu_setup_flushes_denormals_on_openblas_threads(self):
        info = prefopt.cpu_info()
        self.assertTrue(info["flush_denormals"])
        if not info["blas_core"]:
            self.skipTest("not OpenBLAS")
        self.assertTrue(info["blas_threads_restarted"])
        if info["blas_threads"] < 2:
            self.skipTest("OpenBLAS runs one thread: no pool to check")
        # sgemm of subnormal A (1e-39) by 0.1: with denormals-are-zero every entry is 0,
        # without it 512 * 1e-40 = 5.1e-38. OpenBLAS splits the product over its threads,
        # so a pool thread without the mode leaves non-zero entries.
        code = (
            "import ctypes, sys\n"
            "{pre}\n"
            "b = ctypes.CDLL('libopenblas.so.0')\n"
            "n = 512\n"
            "A = (ctypes.c_float * (n * n))(*([1e-39] * (n * n)))\n"
            "B = (ctypes.c_float * (n * n))(*([0.1] * (n * n)))\n"
            "C = (ctypes.c_float * (n * n))()\n"
            "N = ctypes.c_int(n); one = ctypes.c_float(1); zero = ctypes.c_float(0)\n"
            "b.sgemm_(b'N', b'N', ctypes.byref(N), ctypes.byref(N), ctypes.byref(N), ctypes.byref(one), A,\n"
            "         ctypes.byref(N), B, ctypes.byref(N), ctypes.byref(zero), C, ctypes.byref(N))\n"
            "print(sum(1 for x in C if x != 0))\n"
        )
        flushed = python(code.format(pre="import prefopt"))
        self.assertEqual(flushed.returncode, 0, flushed.stderr)
        self.assertEqual(int(flushed.stdout), 0, "entries not flushed after import prefopt")
        # Negative control: the same product without prefopt keeps the subnormal sums.
        plain = python(code.format(pre=""))
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual(int(plain.stdout), 512 * 512)


class TokenizerTest(unittest.TestCase):
    def check_vectors(self, tok, name):
        inputs, ids = vectors(name)
        self.assertGreaterEqual(len(inputs), 40)
        for s, want in zip(inputs, ids):
            self.assertEqual(tok.encode(s), want, "%s: %r" % (name, s))

    def test_encode_matches_hf_vectors(self):
        self.check_vectors(prefopt.Tokenizer(os.path.join(VOCAB, "ggml-vocab-gpt-2.gguf")), "gpt-2")
        self.check_vectors(prefopt.Tokenizer(os.path.join(DATA, "tokenizers", "gpt2", "tokenizer.json")), "gpt-2")
        self.check_vectors(prefopt.Tokenizer(os.path.join(DATA, "tokenizers", "qwen2")), "qwen2")
        self.check_vectors(prefopt.Tokenizer(os.path.join(VOCAB, "ggml-vocab-llama-spm.gguf")), "llama-spm")

    def test_decode_and_properties(self):
        tok = prefopt.Tokenizer(os.path.join(DATA, "tokenizers", "gpt2", "tokenizer.json"))
        self.assertEqual(tok.encode("Hello world"), [15496, 995])
        self.assertEqual(tok.decode([15496, 995]), "Hello world")
        s = "naïve café — 東京 🙂\n\ttabs"
        self.assertEqual(tok.decode(tok.encode(s)), s)
        self.assertEqual(tok.vocab_size, 50257)
        self.assertEqual(len(tok), 50257)
        self.assertEqual(tok.token_to_id("<|endoftext|>"), 50256)
        self.assertEqual(tok.id_to_token(15496), "Hello")
        self.assertIsNone(tok.token_to_id("no such token at all"))

    def test_apply_chat_template_matches_cli(self):
        qwen = os.path.join(DATA, "tokenizers", "qwen2")
        tok = prefopt.Tokenizer(qwen)
        messages = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]
        tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
        rows = [
            {"messages": messages},
            {"messages": messages[:1], "add_generation_prompt": True},
            {"messages": messages, "tools": tools},
        ]
        _, out, _ = cli("apply-chat-template", "--tokenizer", qwen, "--input", write_jsonl(os.path.join(TMP, "chat.jsonl"), rows))
        want = [json.loads(l)["text"] for l in out.splitlines()]
        got = [
            tok.apply_chat_template(messages),
            tok.apply_chat_template(messages[:1], add_generation_prompt=True),
            tok.apply_chat_template(messages, tools=tools),
        ]
        self.assertEqual(got, want)
        self.assertIn("<|im_start|>assistant\n", got[1])
        self.assertEqual(tok.apply_chat_template(messages, tokenize=True), tok.encode(got[0]))
        # A built-in template by name.
        plain = prefopt.Tokenizer(qwen, chat_template="chatml")
        self.assertIn("<|im_start|>user\nWhat is 2+2?<|im_end|>", plain.apply_chat_template(messages))

    def test_errors(self):
        missing = os.path.join(TMP, "no_such_tokenizer.json")
        with self.assertRaises(prefopt.Error) as e:
            prefopt.Tokenizer(missing)
        self.assertIn(missing, str(e.exception))
        self.assertTrue(issubclass(prefopt.Error, ValueError))
        tok = prefopt.Tokenizer(os.path.join(DATA, "tokenizers", "gpt2", "tokenizer.json"))
        with self.assertRaises(prefopt.Error) as e:
            tok.decode([15496, 50257])
        self.assertIn("50257", str(e.exception))
        with self.assertRaises(prefopt.Error):
            tok.decode(["x"])
        # A template's raise_exception is a TemplateError, itself a prefopt.Error.
        bad = os.path.join(TMP, "raises.jinja")
        with open(bad, "w") as f:
            f.write("{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message first') }}{% endif %}")
        t = prefopt.Tokenizer(os.path.join(DATA, "tokenizers", "qwen2"), chat_template=bad)
        with self.assertRaises(prefopt.TemplateError) as e:
            t.apply_chat_template([{"role": "user", "content": "hi"}])
        self.assertIn("a system message first", str(e.exception))
        self.assertIsInstance(e.exception, prefopt.Error)
        # A tokenizer without a chat template says so, naming it.
        gpt2 = os.path.join(DATA, "tokenizers", "gpt2", "tokenizer.json")
        with self.assertRaises(prefopt.Error) as e:
            prefopt.Tokenizer(gpt2).apply_chat_template([{"role": "user", "content": "hi"}])
        self.assertIn("chat template", str(e.exception))


class ModelTest(unittest.TestCase):
    FAMILIES = ("llama", "gpt2", "gemma2")

    def ref(self, fam):
        with open(os.path.join(DATA, "models", fam, "reference.json")) as f:
            return json.load(f)

    def test_logprobs_equal_cli_and_reference(self):
        for fam in self.FAMILIES:
            d = os.path.join(DATA, "models", fam)
            ref = self.ref(fam)
            seqs = [[i for i, m in zip(ids, mask) if m] for ids, mask in zip(ref["input_ids"], ref["attention_mask"])]
            seqs.append(ref["generation"]["prompt_ids"])
            m = prefopt.load_model(d)
            got = m.logprobs(seqs)
            self.assertEqual([len(g) for g in got], [len(s) - 1 for s in seqs])
            _, out, _ = cli("logprobs", "--model", d, "--input",
                            write_jsonl(os.path.join(TMP, "ids_%s.jsonl" % fam), [{"input_ids": s} for s in seqs]))
            want = [json.loads(l)["token_logprobs"] for l in out.splitlines()]
            self.assertEqual(got, want, fam)  # the same float32 values
            for j in range(2):
                for a, b in zip(got[j], ref["next_token_logprobs"][j]):
                    self.assertAlmostEqual(a, b, delta=1e-4, msg=fam)
            self.assertEqual(m.vocab_size, ref["logits_seq0_shape"][1])

    def test_greedy_generate_matches_reference(self):
        for fam in self.FAMILIES:
            ref = self.ref(fam)
            m = prefopt.load_model(os.path.join(DATA, "models", fam))
            out = m.generate([ref["generation"]["prompt_ids"]], temperature=0, max_new_tokens=10)
            self.assertEqual(len(out), 1)
            self.assertEqual(len(out[0]), 1)
            s = out[0][0]
            self.assertEqual(s["ids"], ref["generation"]["new_token_ids"], fam)
            self.assertEqual(s["finish_reason"], "length")
            self.assertEqual(s["text"], "")  # no tokenizer in these directories

    def test_sampling_is_reproducible_and_independent_of_batching(self):
        m = prefopt.load_model(os.path.join(DATA, "models", "llama"))
        prompts = [[1, 2, 3, 4], [5, 6, 7], [8, 9]]
        a = m.generate(prompts, n=3, temperature=1.0, top_p=0.9, seed=7, max_new_tokens=6, batch_size=8)
        b = m.generate(prompts, n=3, temperature=1.0, top_p=0.9, seed=7, max_new_tokens=6, batch_size=1)
        c = m.generate(prompts, n=3, temperature=1.0, top_p=0.9, seed=8, max_new_tokens=6, batch_size=8)
        # Same draws whatever the batching; logprob_sum may differ in the last bits (padded batches).
        for pa, pb in zip(a, b):
            for sa, sb in zip(pa, pb):
                self.assertEqual((sa["ids"], sa["finish_reason"]), (sb["ids"], sb["finish_reason"]))
                self.assertAlmostEqual(sa["logprob_sum"], sb["logprob_sum"], delta=1e-4)
        self.assertNotEqual([s["ids"] for p in a for s in p], [s["ids"] for p in c for s in p])
        self.assertEqual([len(p) for p in a], [3, 3, 3])
        # logprob_sum is the sum of the model's log-probs of the sampled tokens.
        s = a[0][0]
        lp = m.logprobs([prompts[0] + s["ids"]])[0][len(prompts[0]) - 1:]
        self.assertAlmostEqual(sum(lp), s["logprob_sum"], delta=1e-3)

    def test_sampling_equals_cli(self):
        # The shared Llama (vocab 320) with GPT-2's tokenizer: ids below 320 decode to text.
        d = os.path.join(DATA, "models", "llama")
        gpt2 = os.path.join(DATA, "tokenizers", "gpt2", "tokenizer.json")
        prompts = [[15, 16, 17, 18], [40, 41]]
        path = write_jsonl(os.path.join(TMP, "prompts.jsonl"), [{"input_ids": p} for p in prompts])
        _, out, _ = cli("generate", "--model", d, "--tokenizer", gpt2, "--prompts", path, "--n", "2",
                        "--temperature", "0.8", "--top-k", "50", "--seed", "11", "--max-new-tokens", "8")
        want = [json.loads(l) for l in out.splitlines()]
        got = prefopt.load_model(d, tokenizer=gpt2).generate(prompts, n=2, temperature=0.8, top_k=50, seed=11,
                                                             max_new_tokens=8)
        self.assertEqual(len(want), 4)
        for w in want:
            g = got[w["prompt_index"]][w["sample_index"]]
            self.assertEqual(g["ids"], w["ids"])
            self.assertEqual(g["text"], w["text"])
            self.assertEqual(g["finish_reason"], w["finish_reason"])
            self.assertAlmostEqual(g["logprob_sum"], w["logprob_sum"], delta=1e-9)
        self.assertTrue(any(g["text"] for p in got for g in p))

    def test_long_calls_release_the_gil(self):
        # While a long call runs in a thread, this thread keeps running Python: it could
        # not if the call held the GIL (then at most a tick before and one after the call).
        m = prefopt.load_model(os.path.join(DATA, "models", "gpt2"))
        seqs = [[(7 * i + j) % 500 + 1 for j in range(120)] for i in range(200)]
        done = threading.Event()
        took = []

        def work():
            t0 = time.monotonic()
            m.logprobs(seqs)
            took.append(time.monotonic() - t0)
            done.set()

        t = threading.Thread(target=work)
        t.start()
        ticks = 0
        while not done.wait(0.005):
            ticks += 1
        t.join()
        if took[0] < 0.1:
            self.skipTest("logprobs took only %.3f s" % took[0])
        self.assertGreaterEqual(ticks, 4, "this thread ran %d times during a %.2f s call" % (ticks, took[0]))

    def test_calls_from_another_thread(self):
        m = prefopt.load_model(os.path.join(DATA, "models", "gpt2"))
        want = m.logprobs([[1, 2, 3, 4, 5]])
        got = []
        t = threading.Thread(target=lambda: got.append(m.logprobs([[1, 2, 3, 4, 5]])))
        t.start()
        t.join()
        self.assertEqual(got, [want])

    def test_errors(self):
        d = os.path.join(DATA, "models", "llama")
        m = prefopt.load_model(d)
        with self.assertRaises(prefopt.Error) as e:
            m.logprobs([[1, 2], [1, 99999]])
        self.assertIn("logprobs(ids[1])", str(e.exception))
        self.assertIn("vocabulary", str(e.exception))
        with self.assertRaises(prefopt.Error):
            m.logprobs([1, 2, 3])  # one list, not a list of lists
        with self.assertRaises(prefopt.Error):
            m.logprobs([[1, 2.0]])
        class Index:  # an int-like (numpy.int64, ...): anything with __index__ is a token id
            def __index__(self):
                return 2

        self.assertEqual(m.logprobs([(1, Index(), 3)]), m.logprobs([[1, 2, 3]]))
        with self.assertRaises(prefopt.Error) as e:
            m.generate(["some text"])
        self.assertIn("tokenizer", str(e.exception))
        with self.assertRaises(prefopt.Error):
            m.generate([[1, 2]], top_p=0)
        missing = os.path.join(TMP, "no_such_model")
        with self.assertRaises(prefopt.Error) as e:
            prefopt.load_model(missing)
        self.assertIn(missing, str(e.exception))


class VerifyTest(unittest.TestCase):
    def test_grade_matches_cli(self):
        rows = []
        with open(os.path.join(DATA, "math", "qwen25math_math_cot_100_graded.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                for resp in r["code"][:2]:
                    rows.append({"prediction": resp, "answer": r["gt"]})
                if len(rows) >= 60:
                    break
        rows.append({"prediction": "I cannot tell.", "answer": "7"})
        _, out, _ = cli("grade", "--kind", "math", "--input", write_jsonl(os.path.join(TMP, "grade.jsonl"), rows))
        want = [json.loads(l)["verdict"] for l in out.splitlines()]
        got = [prefopt.grade("math", r["prediction"], r["answer"]) for r in rows]
        self.assertEqual(got, want)
        self.assertGreater(got.count("CORRECT"), 30)
        self.assertEqual(got[-1], "UNGRADABLE")

    def test_grade_gsm8k_by_hand(self):
        self.assertEqual(prefopt.grade("gsm8k", "She pays 2 * 9 = 18 dollars.\n#### 18", "#### 18"), "CORRECT")
        self.assertEqual(prefopt.grade("gsm8k", "So the answer is 1,234.", "1234"), "CORRECT")
        self.assertEqual(prefopt.grade("gsm8k", "The answer is 17", "#### 18"), "INCORRECT")
        self.assertEqual(prefopt.grade("gsm8k", "I don't know", "#### 18"), "UNGRADABLE")
        self.assertEqual(prefopt.grade("GSM8K", "18 apples", 18), "CORRECT")  # a numeric gold, as the CLI
        d = prefopt.grade("math", "Thus $\\boxed{\\dfrac{1}{2}}$.", "0.5", details=True)
        self.assertEqual(d["verdict"], "CORRECT")
        self.assertIn("frac{1}{2}", d["extracted"])
        with self.assertRaises(prefopt.Error) as e:
            prefopt.grade("humaneval", "x", "y")
        self.assertIn("humaneval", str(e.exception))

    def test_pass_at_k_against_formula(self):
        for n, c, k in [(10, 3, 1), (10, 3, 5), (20, 1, 10), (100, 37, 13), (5, 0, 2), (5, 5, 3), (7, 4, 7)]:
            want = 1.0 - math.comb(n - c, k) / math.comb(n, k)
            self.assertAlmostEqual(prefopt.pass_at_k(n, c, k), want, places=12, msg=(n, c, k))
        self.assertEqual(prefopt.pass_at_k(6, 0, 3), 0.0)
        with self.assertRaises(prefopt.Error) as e:
            prefopt.pass_at_k(3, 1, 4)
        self.assertIn("k=4", str(e.exception))


class EvalCodeTest(unittest.TestCase):
    def test_right_and_wrong_completion(self):
        path = os.path.join(DATA, "code", "HumanEval.jsonl.gz")
        with gzip.open(path, "rt") as f:
            p0 = json.loads(f.readline())
        completions = [
            {"task_id": p0["task_id"], "completion": p0["canonical_solution"], "tag": "right"},
            {"task_id": p0["task_id"], "completion": "    return False\n", "tag": "wrong"},
        ]
        problems = [{k: p0[k] for k in ("task_id", "prompt", "test", "entry_point")}]
        for probs in (problems, path):  # a list of dicts, or the JSONL.gz path
            r = prefopt.eval_code(probs, completions, workers=2, timeout=20, k=[1, 2])
            res = r["results"]
            self.assertEqual([x["tag"] for x in res], ["right", "wrong"])  # input fields kept, in order
            self.assertEqual([x["verdict"] for x in res], ["PASSED", "FAILED"], res)
            self.assertEqual([x["passed"] for x in res], [True, False])
            s = r["summary"]
            self.assertEqual(s["completions"], 2)
            self.assertEqual(s["verdicts"], {"PASSED": 1, "FAILED": 1})
            self.assertEqual(s["tasks"][p0["task_id"]]["n"], 2)
            self.assertEqual(s["tasks"][p0["task_id"]]["c"], 1)
            self.assertAlmostEqual(s["pass@1"], 0.5)
            self.assertAlmostEqual(s["pass@2"], 1.0)

    def test_errors(self):
        problems = [{"task_id": "t", "prompt": "def f():\n", "test": "def check(c):\n    pass\n", "entry_point": "f"}]
        with self.assertRaises(prefopt.Error) as e:
            prefopt.eval_code(problems, [{"task_id": "t"}, {"task_id": "u", "completion": "    return 1\n"}])
        self.assertIn("completions[0]", str(e.exception))
        self.assertIn("completion", str(e.exception))
        with self.assertRaises(prefopt.Error) as e:
            prefopt.eval_code(problems, [{"task_id": "u", "completion": "    return 1\n"}])
        self.assertIn("unknown task_id", str(e.exception))
        bad = os.path.join(TMP, "problems_bad.jsonl")
        with open(bad, "w") as f:
            f.write(json.dumps(problems[0]) + "\n{not json\n")
        with self.assertRaises(prefopt.Error) as e:
            prefopt.eval_code(bad, [])
        self.assertIn(bad + ":2", str(e.exception))


class TrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The shared tiny Llama (vocab 320) and pre-tokenized pairs, so no tokenizer is needed.
        cls.model = os.path.join(TMP, "tiny_llama")
        shutil.copytree(os.path.join(DATA, "models", "llama"), cls.model)
        rows = []
        for i in range(8):
            prompt = [(7 * i + j) % 300 + 1 for j in range(6)]
            rows.append({"prompt_input_ids": prompt,
                         "chosen_input_ids": [(11 * i + j) % 300 + 1 for j in range(5)],
                         "rejected_input_ids": [(13 * i + 3 * j) % 300 + 1 for j in range(4)]})
        cls.data = write_jsonl(os.path.join(TMP, "pairs.jsonl"), rows)
        cls.keys = dict(max_steps=3, per_device_train_batch_size=2, learning_rate=1e-2, logging_steps=1, seed=3)

    def test_dpo_steps_match_cli(self):
        out = os.path.join(TMP, "dpo_py")
        s = prefopt.train("dpo", self.model, self.data, out, beta=0.1, **self.keys)
        for k in ("method", "output_dir", "metrics", "steps", "first_loss", "last_loss", "seconds",
                  "tokens_per_second", "logged"):
            self.assertIn(k, s)
        self.assertEqual(s["method"], "dpo")
        self.assertEqual(s["steps"], 3)
        # At step 0 the policy equals its reference: DPO's sigmoid loss is -log sigmoid(0) = ln 2.
        self.assertAlmostEqual(s["first_loss"], math.log(2), delta=1e-5)
        self.assertTrue(math.isfinite(s["last_loss"]))
        self.assertNotAlmostEqual(s["last_loss"], s["first_loss"], delta=1e-6)
        self.assertTrue(os.path.exists(os.path.join(out, "model.safetensors")))
        with open(s["metrics"]) as f:
            metrics = [json.loads(l) for l in f]
        py_losses = [r["loss"] for r in metrics if "loss" in r]
        self.assertEqual(len(py_losses), 3)
        self.assertEqual([r["loss"] for r in s["logged"] if "loss" in r], py_losses)
        # The CLI with the same keys trains the same steps.
        cli_out = os.path.join(TMP, "dpo_cli")
        args = ["train", "--method", "dpo", "--model", self.model, "--data", self.data, "--output_dir", cli_out, "--beta", "0.1"]
        for k, v in self.keys.items():
            args += ["--" + k, str(v)]
        cli(*args)
        with open(os.path.join(cli_out, "metrics.jsonl")) as f:
            cli_losses = [json.loads(l)["loss"] for l in f if "loss" in json.loads(l)]
        self.assertEqual(len(cli_losses), 3)
        for a, b in zip(py_losses, cli_losses):
            self.assertAlmostEqual(a, b, delta=1e-6)
        # The trained model loads back.
        self.assertEqual(prefopt.load_model(out).vocab_size, 320)

    def test_errors(self):
        out = os.path.join(TMP, "dpo_err")
        with self.assertRaises(prefopt.Error) as e:
            prefopt.train("dpo", self.model, self.data, out, not_a_key=1, **self.keys)
        self.assertIn("not_a_key", str(e.exception))
        with self.assertRaises(prefopt.Error) as e:
            prefopt.train("dpo", self.model, self.data, out, max_steps="many")
        self.assertIn("max_steps", str(e.exception))
        with self.assertRaises(prefopt.Error) as e:
            prefopt.train("not_a_method", self.model, self.data, out)
        self.assertIn("not_a_method", str(e.exception))
        bad = write_jsonl(os.path.join(TMP, "bad_pairs.jsonl"),
                          [{"prompt_input_ids": [1, 2], "chosen_input_ids": [3], "rejected_input_ids": [4]},
                           {"prompt_input_ids": [1, 2], "chosen_input_ids": [3, 99999], "rejected_input_ids": [4]}])
        with self.assertRaises(prefopt.Error) as e:
            prefopt.train("dpo", self.model, bad, out, **self.keys)
        self.assertIn(bad + ":2", str(e.exception))
        missing = os.path.join(TMP, "no_such_data.jsonl")
        with self.assertRaises(prefopt.Error) as e:
            prefopt.train("dpo", self.model, missing, out, **self.keys)
        self.assertIn(missing, str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
