"""transformers ``generate`` backend with llguidance-constrained JSON, for CPU runs and small GPUs. The only module
that imports transformers and tokenizers (lazily, inside the functions that use them): the backend, the model's own
tokenizer for counting prompt tokens (`PromptTokenizer`, used through `llmrec_local.llm.tokens`), and the builders
of a byte-level BPE tokenizer and a random Qwen2 that `llmrec_local.llm.smoke` assembles into the smoke model.

Requests are rendered with the model's chat template, grouped by sampling settings, sorted by prompt length (less
padding) and run in left-padded micro-batches. Constrained decoding is our own `LLGuidanceLogitsProcessor`: one
llguidance matcher per row; at every step it feeds the row's previous token to its matcher and masks the logits
to the tokens the JSON-schema grammar allows (and to EOS once the grammar is complete). Even a model with random
weights therefore emits strictly valid JSON; whitespace between tokens is disabled (``whitespace_flexible=False``)
so a weak model cannot spend its budget on blanks.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import BackendError, ConfigError
from ..hashing import canonical_json
from .base import GenRequest, GenResult, UsageStats

log = logging.getLogger(__name__)


class LLGuidanceLogitsProcessor:
    """transformers logits processor enforcing one llguidance grammar per batch row (None = unconstrained).

    At step t, ``input_ids`` (B, L_t) ends with the token chosen at step t-1, which each unfinished matcher
    consumes; then ``scores`` (B, V) is set to -inf outside the allowed set. The allowed set comes as an int32
    bitmask (B, ceil(V/32)) where bit ``j % 32`` of word ``j // 32`` marks token j; V may exceed the tokenizer's
    size (padded embedding rows), those ids are never allowed.
    """

    def __init__(self, lltokenizer: Any, grammars: Sequence[str | None], vocab_size: int,
                 eos_ids: Sequence[int]) -> None:
        import llguidance
        import llguidance.torch as llt
        import torch

        self._llt = llt
        self.matchers = [llguidance.LLMatcher(lltokenizer, g) if g is not None else None for g in grammars]
        for m in self.matchers:
            if m is not None and m.is_error():
                raise BackendError(f"llguidance rejected a grammar: {m.get_error()}")
        self.mask = llt.allocate_token_bitmask(len(grammars), vocab_size)
        self.eos_ids = list(eos_ids)
        self.first_step = True
        self._bits = torch.arange(32, dtype=torch.int32)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.first_step:
            for row, m in enumerate(self.matchers):
                if m is not None and not m.is_stopped():
                    m.consume_token(int(input_ids[row, -1]))
        self.first_step = False
        constrained = False
        for row, m in enumerate(self.matchers):
            if m is None:
                self.mask[row].fill_(-1)  # all bits set: every token allowed
                continue
            constrained = True
            if m.is_stopped():  # grammar complete: only EOS may follow (a finished row is padded anyway)
                self.mask[row].fill_(0)
                for e in self.eos_ids:
                    self.mask[row, e // 32] |= 1 << (e % 32)
            else:
                self._llt.fill_next_token_bitmask(m, self.mask, row)
        if not constrained:
            return scores
        allowed = ((self.mask.unsqueeze(-1) >> self._bits) & 1).bool().flatten(1)[:, : scores.shape[1]]
        return scores.masked_fill(~allowed.to(scores.device), float("-inf"))

    def errors(self) -> list[str | None]:
        """Per row: the matcher's error, if the model produced a token the grammar refused (should never occur)."""
        return [m.get_error() if m is not None and m.is_error() else None for m in self.matchers]


class TransformersBackend:
    """`LLMBackend` over ``AutoModelForCausalLM.generate``.

    Args:
        model: local model folder (resolve aliases with the registry first).
        model_id: identity for cache keys (default: folder name).
        dtype: "auto", "float32", "bfloat16", "float16".
        device: "cpu", "cuda", "cuda:1"...; None = cuda when available.
        micro_batch_size: rows per ``generate`` call (bounds padding waste and activation memory).
        seed: base seed; each micro-batch seeds torch from it and the first request's own seed.
        show_progress / progress_min: tqdm bar (stderr) over requests for batches of at least `progress_min`.
    """

    def __init__(self, model: str | Path, *, model_id: str | None = None, dtype: str = "auto",
                 device: str | None = None, micro_batch_size: int = 16, seed: int = 0, show_progress: bool = True,
                 progress_min: int = 64) -> None:
        if micro_batch_size < 1:
            raise ConfigError(f"micro_batch_size={micro_batch_size} must be >= 1")
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ConfigError(f"transformers model {model!r} is not a local folder; resolve the alias with "
                              f"llmrec_local.llm.registry.resolve_model (no code path downloads)")
        try:
            import llguidance.hf
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise BackendError(f"the transformers backend needs transformers and llguidance "
                               f"(pip install 'llmrec_local[hf]'); import failed: {exc}") from exc
        self._torch = torch
        self.model_id = model_id or path.name
        self.usage = UsageStats()
        self.micro_batch_size = micro_batch_size
        self.seed = seed
        self.show_progress = show_progress
        self.progress_min = progress_min
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype, None)
        if torch_dtype is None:
            raise ConfigError(f"dtype={dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise BackendError(f"transformers could not load {path}: {exc}") from exc
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"  # generation continues from the right end of every row
        if self.tokenizer.chat_template is None:
            raise BackendError(f"{path} has no chat template (tokenizer_config.json / chat_template.jinja); "
                               f"use an instruct model folder")
        gen_eos = self.model.generation_config.eos_token_id
        eos = gen_eos if gen_eos is not None else self.tokenizer.eos_token_id
        self.eos_ids = [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token_id = self.eos_ids[0]
        self.vocab_size = int(self.model.config.get_text_config().vocab_size)
        self._lltok = llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=self.vocab_size, eos_token=self.eos_ids)
        self._grammars: dict[str, str] = {}

    def _grammar(self, schema: dict[str, Any]) -> str:
        """Compiled llguidance grammar of a JSON schema, cached: jobs share one schema across thousands of rows."""
        import llguidance

        key = canonical_json(schema)
        if key not in self._grammars:
            self._grammars[key] = llguidance.LLMatcher.grammar_from_json_schema(
                json.dumps(schema), defaults={"whitespace_flexible": False})
        return self._grammars[key]

    def _render(self, req: GenRequest) -> str:
        return render_chat(self.tokenizer, req.messages)

    def _run_batch(self, reqs: Sequence[GenRequest], prompts: Sequence[str]) -> list[GenResult]:
        torch = self._torch
        s = reqs[0].sampling
        grammars: list[str | None] = []
        errors: list[str | None] = []
        for r in reqs:
            try:
                grammars.append(self._grammar(r.json_schema) if r.json_schema is not None else None)
                errors.append(None)
            except (ValueError, TypeError) as exc:  # schema llguidance cannot compile
                grammars.append(None)
                errors.append(f"schema rejected by llguidance: {exc}")
        processor = LLGuidanceLogitsProcessor(self._lltok, grammars, self.vocab_size, self.eos_ids)
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.device)
        sampling = dict(do_sample=True, temperature=s.temperature, top_p=s.top_p) if s.temperature > 0 else \
            dict(do_sample=False, temperature=None, top_p=None)
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(self.seed * 1_000_003 + (s.seed or 0))
            out = self.model.generate(**enc, max_new_tokens=s.max_tokens, logits_processor=[processor],
                                      eos_token_id=self.eos_ids, pad_token_id=self.tokenizer.pad_token_id,
                                      top_k=None, **sampling)
        new = out[:, enc["input_ids"].shape[1]:].cpu()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        matcher_errors = processor.errors()
        results = []
        eos = set(self.eos_ids)
        for i, req in enumerate(reqs):
            ids = new[i].tolist()
            stop = next((j for j, t in enumerate(ids) if t in eos), None)
            kept = ids if stop is None else ids[: stop + 1]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            error = errors[i] or matcher_errors[i]
            results.append(GenResult(req.key, text, finish_reason="error" if error else
                                     ("stop" if stop is not None else "length"),
                                     prompt_tokens=int(prompt_lens[i]), completion_tokens=len(kept), error=error))
        return results

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Run all `requests` (order preserved) in micro-batches of equal sampling settings."""
        if not requests:
            return []
        start = time.perf_counter()
        prompts = [self._render(r) for r in requests]
        lengths = [len(p) for p in prompts]
        # rows sharing sampling settings can share a generate call; longest first so memory peaks early
        order = sorted(range(len(requests)), key=lambda i: (
            repr((requests[i].sampling.max_tokens, requests[i].sampling.temperature, requests[i].sampling.top_p)),
            -lengths[i]))
        results: list[GenResult | None] = [None] * len(requests)
        bar = None
        if self.show_progress and len(requests) >= self.progress_min:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(requests), desc="transformers", file=sys.stderr, dynamic_ncols=True)
        i = 0
        while i < len(order):
            first = requests[order[i]].sampling
            group = [order[i]]
            i += 1
            while i < len(order) and len(group) < self.micro_batch_size and \
                    requests[order[i]].sampling.max_tokens == first.max_tokens and \
                    requests[order[i]].sampling.temperature == first.temperature and \
                    requests[order[i]].sampling.top_p == first.top_p:
                group.append(order[i])
                i += 1
            try:
                batch = self._run_batch([requests[j] for j in group], [prompts[j] for j in group])
            except RuntimeError as exc:  # e.g. out of memory: nothing of this call is usable
                raise BackendError(f"transformers generate failed for {self.model_id}: {exc}; lower "
                                   f"micro_batch_size (now {self.micro_batch_size})") from exc
            for j, res in zip(group, batch, strict=True):
                results[j] = res
            if bar is not None:
                bar.update(len(group))
        if bar is not None:
            bar.close()
        done = [r for r in results if r is not None]
        self.usage.requests += len(done)
        self.usage.prompt_tokens += sum(r.prompt_tokens for r in done)
        self.usage.completion_tokens += sum(r.completion_tokens for r in done)
        self.usage.wall_s += time.perf_counter() - start
        return done

    def close(self) -> None:
        self.model = None


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """One chat as the model reads it: the tokenizer's chat template with the generation prompt appended
    (``<|im_start|>assistant\\n`` for ChatML), as text: what the transformers backend sends and the token plan
    counts."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


class PromptTokenizer:
    """A model folder's own tokenizer and chat template, without the weights: what the augmentation stage counts
    prompt tokens with (history budgets, the token plan of a job).

    Prompts are rendered exactly as the local backends render them: ``apply_chat_template(messages,
    add_generation_prompt=True)`` as text, then encoded without adding special tokens (the template writes them), which
    is also how vLLM's ``LLM.chat`` tokenizes a chat. So ``chat_ids(m)`` has the length the backends report as the
    request's prompt tokens.
    """

    def __init__(self, model: str | Path) -> None:
        path = Path(model).expanduser()
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise BackendError(f"counting tokens needs transformers (pip install 'llmrec_local[hf]'); import failed: "
                               f"{exc}") from exc
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise BackendError(f"transformers could not load the tokenizer of {path}: {exc}") from exc
        if self.tokenizer.chat_template is None:
            raise BackendError(f"{path} has no chat template (tokenizer_config.json / chat_template.jinja); "
                               f"use an instruct model folder")
        self.path = path

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text encoded on its own (no special tokens added)."""
        if not texts:
            return []
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def chat_ids(self, conversations: Sequence[Sequence[dict[str, str]]]) -> list[list[int]]:
        """Token ids of each chat as the model reads it: rendered with the chat template and the generation prompt
        (``<|im_start|>assistant\\n`` for ChatML), encoded without added special tokens."""
        if not conversations:
            return []
        texts = [render_chat(self.tokenizer, m) for m in conversations]
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]


def train_byte_level_bpe(texts: Iterable[str], *, vocab_size: int, special_tokens: Sequence[str], split_regex: str,
                         eos_token: str, pad_token: str, chat_template: str, model_max_length: int) -> Any:
    """A fast tokenizer (``PreTrainedTokenizerFast``) whose byte-level BPE is trained on `texts`; nothing downloaded.

    Pre-tokenization is a regex split (`split_regex`, isolated) followed by byte level, after NFC normalisation, the
    components transformers re-installs when it loads a Qwen2 tokenizer, so ids agree across loaders. The initial
    alphabet is every byte, so any text (JSON included) is spellable. No BOS and no UNK token.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos_token, pad_token=pad_token,
                                   unk_token=None, bos_token=None, chat_template=chat_template,
                                   model_max_length=model_max_length)


def random_qwen2(tokenizer: Any, *, vocab_size: int, hidden: int, layers: int, heads: int, kv_heads: int,
                 max_positions: int, seed: int) -> Any:
    """A ``Qwen2ForCausalLM`` with random float32 weights drawn under `seed` (the caller's RNG state is kept).

    head_dim = hidden / heads, MLP width 2 * hidden, tied embeddings. Special ids come from `tokenizer`, as in
    Qwen2-Instruct: BOS and PAD are its pad token, and generation stops at its EOS or its pad token.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    pad = tokenizer.convert_tokens_to_ids(tokenizer.pad_token)
    cfg = Qwen2Config(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                      head_dim=hidden // heads, max_position_embeddings=max_positions, tie_word_embeddings=True,
                      bos_token_id=pad, eos_token_id=eos, pad_token_id=pad, torch_dtype="float32")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(cfg)
    model.generation_config = GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad, bos_token_id=pad,
                                               do_sample=False)
    return model


def save_model_folder(model: Any, tokenizer: Any, folder: Path) -> None:
    """Write `model` and `tokenizer` into `folder` as a local model folder both transformers 4.x and 5.x load.

    transformers 5 names the tokenizer class "TokenizersBackend", unknown to 4.x; "PreTrainedTokenizerFast" loads on
    both. The chat template is also written into tokenizer_config.json (older loaders read it only there).
    """
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    path = folder / "tokenizer_config.json"
    data = json.loads(path.read_text())
    data["tokenizer_class"] = "PreTrainedTokenizerFast"
    data["chat_template"] = tokenizer.chat_template
    path.write_text(json.dumps(data, indent=2))
