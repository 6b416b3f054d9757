"""English and Chinese (Simplified): picked in the sidebar or with ``?lang=zh`` in the URL.

Text is written in English where it is used, wrapped in ``t()``; ``ZH`` maps each such English text
to its Chinese, and a text missing from it shows in English (``tests/test_i18n.py`` lists every
``t("...")`` of the app and fails on a missing one). Templates take named values, filled in after
translation: ``t("step {step} of {total}", step=3, total=10)``. Technical terms (BatchNorm, LayerNorm,
batch, pad, token, ...) stay in English inside the Chinese: they are the words readers search for.
Charts are built in English (core/charts/) and translated when drawn (``ui.show.localized``: titles,
axis titles, legends, panel headers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from core.norm_specs import NORM_SPECS
from core.tasks import TASKS

LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"
KEY = "lang"  # the session-state key and the URL parameter


def lang() -> str:
    return st.session_state.get(KEY, DEFAULT)


def t(text: str, **values) -> str:
    """``text`` in the visitor's language, with ``values`` filled in (``str.format``)."""
    out = ZH.get(text, text) if lang() == "zh" else text
    return out.format(**values) if values else out


def translated(labels: Mapping[Any, str]) -> Callable[[Any], str]:
    """A ``format_func`` showing ``labels[option]`` in the visitor's language. Not for a widget with
    Streamlit's ``bind="query-params"``: that writes the shown label into the URL, and a link must
    mean the same in either language (ui/share.py writes option names instead)."""
    zh = lang() == "zh"  # fixed now: Streamlit may call format_func outside the script's run
    return lambda option: ZH.get(labels[option], labels[option]) if zh else labels[option]


def language_picker(where=st.sidebar):
    """The language switch. The URL decides on a session's first run (an unknown ``lang`` falls
    back to English with a warning); afterwards the switch does, and the URL follows it, so a
    copied link opens in the same language."""
    url = st.query_params.get(KEY)
    if KEY not in st.session_state:
        st.session_state[KEY] = url if url in LANGUAGES else DEFAULT
        if url is not None and url not in LANGUAGES:
            shown = re.sub(r"[^\w-]", "?", url[:24])  # the link's text, never its markup
            st.warning(
                f"Unknown language `lang={shown}` in the link: showing English. Use `lang=en` or `lang=zh`.  \n"
                f"链接中的语言参数 `lang={shown}` 无效，已显示英文。请使用 `lang=en` 或 `lang=zh`。",
                icon=":material/translate:",
            )
    where.radio(
        "Language · 语言",
        list(LANGUAGES),
        format_func=LANGUAGES.get,
        horizontal=True,
        key=KEY,
        on_change=_relabel,
        persist_state="session",  # else a page change (st.switch_page, a tour button) resets it
    )
    if lang() == DEFAULT:
        st.query_params.pop(KEY, None)  # a clean URL for the default
    else:
        st.query_params[KEY] = lang()


def _relabel():
    """After a switch, give every choice widget its value again. A selectbox's browser side holds
    the *label* of its choice; without this it would send the old language's label on the next
    run, match no option, and fall back to its default. Set anew, the value goes out with its
    label in the new language. (Choices are str or lists of str; other state is left alone.)"""
    for key, value in list(st.session_state.items()):
        is_choice = isinstance(value, str) or (
            isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value)
        )
        if key != KEY and is_choice:
            st.session_state[key] = value


# English text -> Chinese (Simplified). Keys are exactly the English passed to t() (or held in a
# label dict that is shown through t()); tests/test_i18n.py checks that every one is here.
ZH: dict[str, str] = {
    # ---------------------------------------------------------------- app, pages, menu
    "Overview": "概览",
    "What BatchNorm and LayerNorm pool, on a real batch.": "在一个真实的 batch 上看 BatchNorm 和 LayerNorm 各自汇总哪些值。",
    "Guided tour": "导览",
    "Live comparison": "实时对比",
    "Train the norms side by side from the same init on the same batches; watch loss and gradients stream.": (
        "从同一初始化、在同样的 batch 上并排训练各种 norm，实时观看 loss 和梯度曲线。"
    ),
    "Batch size": "Batch 大小",
    "Noisy batch statistics: BatchNorm's gap to LayerNorm widens as the batch shrinks (the Group Norm figure).": (
        "batch 统计量的噪声：batch 越小，BatchNorm 与 LayerNorm 的差距越大（Group Norm 论文中的图）。"
    ),
    "Padding and lengths": "Padding 与句长",
    "Pad contamination: naive BatchNorm counts pads; masking them or bucketing by length removes the pads, "
    "not every problem; LayerNorm never sees them.": (
        "pad 污染：朴素 BatchNorm 把 pad 也算进统计量；mask 掉 pad 或按长度分桶能去掉 pad，却去不掉所有问题；"
        "LayerNorm 根本看不到 pad。"
    ),
    "Per-token statistics": "逐 token 统计量",
    "After LayerNorm every real token has mean 0 and std 1; after BatchNorm it does not, and pads pull the "
    "statistics.": "经过 LayerNorm，每个真实 token 的均值为 0、标准差为 1；经过 BatchNorm 则不然，而且 pad 会拉偏统计量。",
    "Train vs inference": "训练 vs 推理",
    "Gradients": "梯度",
    "Can BatchNorm be saved?": "BatchNorm 还有救吗？",
    "The papers' fixes (PowerNorm, Batch Renormalization, GroupNorm) against each failure, in a decoder and in "
    "the encoder setting where they were studied.": (
        "论文中的修补方案（PowerNorm、Batch Renormalization、GroupNorm）逐一对照每种失效，在解码器中，"
        "也在它们被研究时所用的编码器设置中。"
    ),
    "Three answers from the literature: PowerNorm (Shen et al. 2020) normalises by a running quadratic mean "
    "instead of the batch's statistics, Batch Renormalization (Ioffe 2017) corrects the batch's statistics toward "
    "the running ones, GroupNorm (Wu & He 2018) normalises each token over groups of channels. Trained side by side "
    "with LayerNorm and BatchNorm, causal (a decoder) and bidirectional (an encoder, where the papers studied "
    "BatchNorm).": (
        "文献中的三种回答：PowerNorm（Shen et al. 2020）用滑动的二次均值代替 batch 统计量来归一化；Batch "
        "Renormalization（Ioffe 2017）把 batch 统计量向 running 统计量校正；GroupNorm（Wu & He 2018）对每个 token "
        "按通道分组归一化。它们与 LayerNorm、BatchNorm 并排训练，分别在因果（解码器）和双向（编码器，论文研究 "
        "BatchNorm 时的设置）两种设置下。"
    ),
    "Held-out loss as deployed (eval mode)": "部署时的留出集 loss（eval 模式）",
    "Each fix against LayerNorm and BatchNorm, as it would be deployed (running statistics where a norm keeps "
    "them). Mean over seeds, band from min to max. Look at batch 2: that is where batch statistics are noisiest.": (
        "每种修补方案与 LayerNorm、BatchNorm 对照，按部署时的方式评估（有 running 统计量的 norm 就用它）。"
        "多个种子的均值，色带为最小值到最大值。看 batch 为 2 时：那里 batch 统计量噪声最大。"
    ),
    "Train/inference gap": "训练/推理差距",
    "Held-out loss with running statistics (as deployed) minus with the statistics of the batch (as in training). "
    "0 for per-token norms; above 0, a norm trained on one normalisation is served another.": (
        "用 running 统计量（部署时）的留出集 loss 减去用 batch 统计量（训练时）的。逐 token 的 norm 为 0；"
        "大于 0 表示训练时用一种归一化、部署时换成另一种。"
    ),
    "A sentence's logits across 8 batches": "同一句子在 8 个 batch 中的 logit",
    "{settings} · batch sizes {sizes} · {attentions} · {seeds} seed(s)": (
        "{settings} · batch 大小 {sizes} · {attentions} · {seeds} 个种子"
    ),
    "Press Run to train LayerNorm, BatchNorm and the three fixes side by side in a decoder and an encoder, at "
    "batch 2 and 32 (about half a minute).": (
        "点“运行”，在解码器和编码器中、batch 为 2 和 32 时，并排训练 LayerNorm、BatchNorm 和三种修补方案（约半分钟）。"
    ),
    "Gradient norms per block over training, and per layer at initialization for Pre- vs Post-norm.": (
        "训练过程中各 block 的梯度范数，以及初始化时 Pre-norm 与 Post-norm 各层的梯度范数。"
    ),
    "BatchNorm vs LayerNorm in Transformers": "Transformer 中的 BatchNorm 与 LayerNorm",
    "Loading the training engine (PyTorch)… the first visit to a fresh server takes a few seconds.": (
        "正在加载训练引擎（PyTorch）……服务器刚启动后的第一次访问需要几秒钟。"
    ),
    # ---------------------------------------------------------------- names of the norms and settings
    "fixed (no pads)": "定长（无 pad）",
    "uniform": "均匀分布",
    "long tail (many pads)": "长尾（pad 很多）",
    "random": "随机",
    "bucketed by length": "按长度分桶",
    "task": "任务",
    "norms": "norm 类型",
    "batch size": "batch 大小",
    "sentence lengths": "句长分布",
    "sentence length range": "句长范围",
    "batching": "组 batch 方式",
    "norm placement": "norm 的位置",
    "attention": "attention",
    "A bidirectional model predicts hidden tokens: it does not write, so there are no generations.": (
        "双向模型预测被遮住的 token：它不写文字，所以没有生成结果。"
    ),
    "A bidirectional model may read every token, so there is no causality map and nothing written; the "
    "train/inference gap and the probe above are what BatchNorm changes here.": (
        "双向模型可以读取每个 token，所以没有因果图，也不写文字；这里 BatchNorm 改变的，是上面的训练/推理差距和探针。"
    ),
    "causal": "因果",
    "bidirectional, masked tokens": "双向，预测被遮住的 token",
    "causal: predict the next token (a decoder)": "因果：预测下一个 token（解码器）",
    "bidirectional: predict hidden tokens (an encoder)": "双向：预测被遮住的 token（编码器）",
    "Causal: a language model, each token predicts the next and sees only earlier ones. Bidirectional: 15% of the "
    "real tokens are hidden and predicted, and every token sees every real token: the encoder setting where the "
    "PowerNorm and TID papers studied BatchNorm. Generations and the causality map need a causal model.": (
        "因果：语言模型，每个 token 预测下一个，只能看到前面的 token。双向：15% 的真实 token 被遮住并预测，每个 token "
        "能看到所有真实 token：这正是 PowerNorm 和 TID 论文研究 BatchNorm 时的编码器设置。生成文字和因果图需要因果模型。"
    ),
    "training steps": "训练步数",
    "learning rate": "学习率",
    "seed": "随机种子",
    "sweep size": "扫描规模",
    "your own text": "你自己的文本",
    "your text {key}": "你的文本 {key}",
    "random batching": "随机组 batch",
    "bucketed batching": "分桶组 batch",
    "pre-norm": "Pre-norm",
    "post-norm": "Post-norm",
    "lengths fixed": "定长",
    "lines of {lo}–{hi} tokens": "{lo}–{hi} 个 token 的诗行",
    "natural (a real text's own lines)": "自然（真实文本自身的行长）",
    "Sentence lengths set to “{lengths}”: the task {task} takes no other.": "句长已设为“{lengths}”：任务 {task} 只接受这一种。",
    "Synthetic text, the control task (BatchNorm-friendly), real English or Chinese text, or your own. Each "
    "task sets the sentence lengths it takes. Your own text: upload it on the Live comparison page.": (
        "合成文本、control 任务（对 BatchNorm 友好）、真实的英文或中文文本，或者你自己的文本。每个任务决定它接受的句长设置。"
        "你自己的文本：在“实时对比”页上传。"
    ),
    "lengths {kind} {lo}–{hi}": "句长 {kind} {lo}–{hi}",
    "batch {n}": "batch {n}",
    "{n} steps": "{n} 步",
    "lr {lr:g}": "学习率 {lr:g}",
    "seed {n}": "种子 {n}",
    # ---------------------------------------------------------------- the settings form
    "Trained side by side from the same initial weights on the same batches.": "从同样的初始权重出发，在同样的 batch 上并排训练。",
    "batch size (sequences)": "batch 大小（序列数）",
    "sentence length range (tokens)": "句长范围（token 数）",
    "peak learning rate": "峰值学习率",
    "AdamW; linear warm-up, then cosine decay.": "AdamW；先线性 warm-up，再余弦衰减。",
    "Initial weights and data order.": "决定初始权重和数据顺序。",
    "Batches are padded to their longest sentence.": "每个 batch 都补 pad 到其中最长的句子。",
    "Random: any sentences share a batch. Bucketed: sentences of similar length share a batch (fewer pads).": (
        "随机：任意句子组成一个 batch。按长度分桶：长度相近的句子组成一个 batch（pad 更少）。"
    ),
    "Where the norm sits: before each sublayer (Pre-norm) or after the residual sum (Post-norm, as in the 2017 "
    "Transformer).": "norm 的位置：在每个子层之前（Pre-norm），或在残差相加之后（Post-norm，即 2017 年原始 Transformer 的做法）。",
    "Pre-norm: x + f(norm(x))": "Pre-norm：x + f(norm(x))",
    "Post-norm: norm(x + f(x))": "Post-norm：norm(x + f(x))",
    "steps": "步数",
    "tokens seen": "已见 token 数",
    "Steps, or real tokens seen (pads not counted).": "训练步数，或已见的真实 token 数（不计 pad）。",
    "Run": "运行",
    "upload a plain-text file on the Live comparison page first, or choose another task.": (
        "请先在“实时对比”页上传一个纯文本文件，或者选择其他任务。"
    ),
    "smoothing (EMA)": "平滑（EMA）",
    "The raw curve stays, faint, under the smoothed one.": "原始曲线以浅色保留在平滑曲线下方。",
    "log y-axis": "y 轴对数刻度",
    "x axis": "x 轴",
    # ---------------------------------------------------------------- running
    "Stop": "停止",
    "Keeps what has been done so far": "保留目前已完成的部分",
    "starting…": "启动中…",
    "step {step} of {total} · {rate:.0f} steps/s": "第 {step} / {total} 步 · 每秒 {rate:.0f} 步",
    " · {norm} diverged at step {step}, stopped": " · {norm} 在第 {step} 步发散，已停止",
    "{done} of {total} paired runs done · {seconds:.0f} s": "已完成 {done} / {total} 组配对运行 · {seconds:.0f} 秒",
    "waiting for a free slot: the server is training for other visitors ({left:.0f} s)…": (
        "等待空闲名额：服务器正在为其他访客训练（{left:.0f} 秒）…"
    ),
    "The server is busy: {limit} experiments are already training for other visitors. "
    "Please press Run again in a minute; your settings are kept.": (
        "服务器繁忙：已有 {limit} 个实验正在为其他访客训练。请过一分钟再点“运行”；你的设置会保留。"
    ),
    "Stopped after {seconds:.1f} s ({reached}): showing the partial results. {title}": (
        "{seconds:.1f} 秒后停止（{reached}）：显示部分结果。{title}"
    ),
    "before the first step": "第一步之前",
    "Stopped before training began: nothing was trained. Press Run to try again.": (
        "在训练开始前停止：没有训练任何内容。请再点“运行”重试。"
    ),
    "**Auto-stopped as diverged** (the loss or the gradient norm blew up; its curves end there, the other "
    "models trained on): {models}.": "**因发散自动停止**（loss 或梯度范数爆炸；其曲线到此为止，其他模型继续训练）：{models}。",
    "{norm} at step {step}": "{norm} 在第 {step} 步",
    "{norm} in {n} of {total} paired runs (first at step {step})": "{norm} 在 {total} 组配对运行中有 {n} 组（最早在第 {step} 步）",
    # ---------------------------------------------------------------- shared result displays
    "The data behind this chart": "这张图背后的数据",
    "Colours": "颜色",
    "{norm}: held-out loss": "{norm}：留出集 loss",
    "{gap:+.3f} vs LayerNorm": "比 LayerNorm {gap:+.3f}",
    "{norm}: final held-out loss in eval mode (BN uses its running statistics), nats/token": (
        "{norm}：eval 模式下最终的留出集 loss（BN 使用 running 统计量），单位 nats/token"
    ),
    "padding fraction": "pad 占比",
    "Share of batch positions that are pads": "batch 中 pad 所占位置的比例",
    "steps per second": "每秒步数",
    "{steps} steps in {seconds:.1f} s, all models": "全部模型 {seconds:.1f} 秒内共 {steps} 步",
    "train loss (last steps)": "训练 loss（最后若干步）",
    "held-out, eval mode": "留出集，eval 模式",
    "held-out, batch stats": "留出集，batch 统计量",
    "norm": "norm",
    "No paired run finished before the stop.": "停止前没有一组配对运行完成。",
    "Gap to LayerNorm in the same run": "同一次运行中与 LayerNorm 的差距",
    # ---------------------------------------------------------------- overview
    "Who shares statistics with whom": "谁和谁共享统计量",
    "sequence": "序列",
    "position": "位置",
    "channel": "通道",
    "A real batch of {B} held-out sentences, padded to {T} positions (× = pad); {channels} of the model's "
    "{d_model} channels drawn. Move the sliders: BatchNorm's pool always spans the whole batch, pads included; "
    "LayerNorm's never leaves the token.": (
        "一个真实的 batch：{B} 个留出集句子，补 pad 到 {T} 个位置（× = pad）；画出了模型 {d_model} 个通道中的 {channels} 个。"
        "拖动滑块：BatchNorm 的汇总范围总是覆盖整个 batch（包括 pad）；LayerNorm 的汇总范围从不离开这个 token。"
    ),
    "BatchNorm pools": "BatchNorm 汇总",
    "Masked BatchNorm pools": "Masked BatchNorm 汇总",
    "LayerNorm pools": "LayerNorm 汇总",
    "{n} values": "{n} 个值",
    "{pads} of them pads ({share:.0%})": "其中 {pads} 个是 pad（{share:.0%}）",
    "One channel, every position of the batch": "一个通道，batch 中的每个位置",
    "One channel, the real tokens of the batch": "一个通道，batch 中的真实 token",
    "Every channel of the picked token": "所选 token 的全部通道",
    "pads left out; still depends on the other sentences": "不含 pad；但仍依赖同 batch 的其他句子",
    "one token; no other sentence, no pad, no batch size": "只有一个 token；与其他句子、pad、batch 大小都无关",
    "The experiments": "实验",
    # ---------------------------------------------------------------- live comparison
    "Pick the norms and the setting, press Run, and watch them train in lockstep: same initial weights, same "
    "batches, same order. Stop keeps what has been trained so far.": (
        "选好 norm 和设置，点“运行”，看它们同步训练：同样的初始权重、同样的 batch、同样的顺序。点“停止”会保留已训练的部分。"
    ),
    "Press Run to train the default comparison: BatchNorm vs LayerNorm on batches of 2 mostly short, padded "
    "sentences (a few seconds).": "点“运行”训练默认对比：BatchNorm vs LayerNorm，每个 batch 2 个大多很短、补了 pad 的句子（几秒钟）。",
    "Solid: the training batch's loss (faint: raw); dashed: held-out loss in eval mode, as deployed; dotted: "
    "held-out with batch statistics. Look for BatchNorm's dashed line above LayerNorm's, and its dotted line "
    "below: batch statistics flatter it (see Train vs inference).": (
        "实线：训练 batch 的 loss（浅色为原始值）；虚线：eval 模式下的留出集 loss，即部署时的表现；点线：用 batch 统计量的留出集 loss。"
        "留意 BatchNorm 的虚线高于 LayerNorm，而它的点线更低：batch 统计量美化了它（见“训练 vs 推理”）。"
    ),
    "Global gradient norm before clipping (clipped at 1). Spikes and drift show which norm trains less "
    "smoothly.": "裁剪前的全局梯度范数（裁剪阈值为 1）。尖峰和漂移显示哪种 norm 训练得不够平稳。",
    "Export: summary and full history": "导出：汇总与完整历史",
    "Loss": "Loss 曲线",
    "Global gradient norm (before clipping)": "全局梯度范数（裁剪前）",
    "full history CSV (every metric, every step, every setting)": "完整历史 CSV（每个指标、每一步、每项设置）",
    # ---------------------------------------------------------------- your own text
    "Your own text": "你自己的文本",
    "Train the language-model task on a plain-text file of yours, character by character. A text of up to "
    "{keep_all:,} characters keeps every character it has; in a longer one, characters seen fewer than {min_count} "
    "times share one UNK token (at most {max_chars:,} are kept). Each sentence is a window of the text with a "
    "length drawn from the sentence-length settings, so batches are padded as usual. The last {held:.0%} of the "
    "text is held out.": (
        "用你自己的纯文本文件按字符训练语言模型任务。不超过 {keep_all:,} 个字符的文本保留它的每一个字符；更长的文本中，"
        "出现少于 {min_count} 次的字符共用一个 UNK token（最多保留 {max_chars:,} 个字符）。每个句子是文本中的一个窗口，"
        "长度按句长设置抽取，因此 batch 照常补 pad。文本的最后 {held:.0%} 留作留出集。"
    ),
    "Plain-text file (.txt, UTF-8, at most 1 MB)": "纯文本文件（.txt，UTF-8，最大 1 MB）",
    "**{name}**: {n:,} characters, {distinct:,} distinct; {unk:.1%} of the text is UNK. The task is now “your "
    "own text”: press Run.": "**{name}**：{n:,} 个字符，{distinct:,} 种不同字符；{unk:.1%} 的文本为 UNK。任务已切换为“你自己的文本”：点“运行”。",
    "Vocabulary, most frequent first: {chars}": "词表（按频率从高到低）：{chars}",
    "{unk:.0%} of the characters are rare ones that all read as UNK: the model can only tell the frequent ones "
    "apart.": "{unk:.0%} 的字符是罕见字符，一律读作 UNK：模型只能区分高频字符。",
    "The file is empty (or blank).": "文件是空的（或只有空白）。",
    "The file has {size:,} bytes; the limit is {limit:,} bytes (1 MB).": "文件有 {size:,} 字节，上限为 {limit:,} 字节（1 MB）。",
    "This is not a plain-text file: it contains NUL bytes.": "这不是纯文本文件：其中含有 NUL 字节。",
    "This is not a plain-text file: {share:.0%} of its characters are control characters.": (
        "这不是纯文本文件：{share:.0%} 的字符是控制字符。"
    ),
    "The file is not UTF-8 text (the byte at position {position:,} is not valid UTF-8). Save it as UTF-8 and "
    "upload it again.": "文件不是 UTF-8 文本（位置 {position:,} 的字节不是合法的 UTF-8）。请另存为 UTF-8 后重新上传。",
    "The text has {n:,} characters; at least {minimum:,} are needed.": "文本只有 {n:,} 个字符，至少需要 {minimum:,} 个。",
    "The uploaded text {key} is no longer in memory: upload the file again.": "上传的文本 {key} 已不在内存中：请重新上传文件。",
    # ---------------------------------------------------------------- pinned runs
    "Pin this run": "固定这次运行",
    "Unpin this run": "取消固定这次运行",
    "Unpin": "取消固定",
    "Only a run that finished can be pinned.": "只有完整跑完的运行才能固定。",
    "At most {n} pinned runs: unpin one first.": "最多固定 {n} 次运行：请先取消固定一个。",
    "Keep this run on the charts while you try other settings (at most {n}).": "在尝试其他设置时，把这次运行保留在图上（最多 {n} 个）。",
    "Pinned runs": "已固定的运行",
    "this run: {summary}": "本次运行：{summary}",
    "this run (pinned): {summary}": "本次运行（已固定）：{summary}",
    "pinned: {summary}": "已固定：{summary}",
    "Held-out loss (eval mode): this run and pinned runs": "留出集 loss（eval 模式）：本次运行与已固定的运行",
    "Training loss: this run and pinned runs": "训练 loss：本次运行与已固定的运行",
    "Colour: the norm, as everywhere. Solid: this run; dashed and fainter: pinned runs, named by the settings in "
    "which they differ.": "颜色：norm 类型，与各处一致。实线：本次运行；较浅的虚线：已固定的运行，以它们不同的设置命名。",
    "All pinned runs as one CSV (every setting as columns)": "全部已固定的运行合为一个 CSV（每项设置一列）",
    # ---------------------------------------------------------------- share links, presenter view, tour
    "Link setting ignored: {problem}.": "已忽略链接中的设置：{problem}。",
    "Share link": "分享链接",
    "This page with every setting, seed included: opened, it shows the same settings, and Run gives the same "
    "numbers.": "本页及其全部设置（包括随机种子）：打开后显示同样的设置，点“运行”得到同样的数字。",
    "Presenter view": "演示模式",
    "Larger text, the settings folded away, the sidebar closed: for a projector. In a link: ?present=1": (
        "更大的字号，设置折叠起来，侧边栏收起：适合投影。在链接中：?present=1"
    ),
    "Eight scenarios that tell the story in order. Each opens its page with the settings filled in and its results "
    "shown at once (precomputed, and labelled so; Re-run live trains them in front of you). For a projector, "
    "switch on the presenter view in the sidebar, or add ?present=1 to the link.": (
        "八个场景按顺序讲完整个故事。每个场景打开对应页面，设置已填好，结果立即显示（预先计算，并如此标注；"
        "“实时重跑”会当场训练）。用投影仪时，请在侧边栏打开演示模式，或在链接中加上 ?present=1。"
    ),
    "Open": "打开",
    "Precomputed · {title} · {settings}": "预先计算 · {title} · {settings}",
    "**Guided tour {i}/{n} · {title}**": "**导览 {i}/{n} · {title}**",
    ":material/inventory_2: **Precomputed results**, shown at once (they took {seconds:.0f} s to train with "
    "`python -m core.precompute`). Re-run live to train them here with the same settings: on the machine that "
    "stored them the numbers are identical; on another processor they are equal within float noise (the last "
    "digits of some figures differ).": (
        ":material/inventory_2: **预先计算的结果**，立即显示（用 `python -m core.precompute` 训练耗时 {seconds:.0f} 秒）。"
        "点“实时重跑”用同样的设置在这里训练：在生成这些结果的机器上数字完全相同；换一种处理器，数字在浮点误差范围内相等"
        "（部分数字的最后几位不同）。"
    ),
    "Re-run live": "实时重跑",
    "Next: {title}": "下一个：{title}",
    "Back to the tour": "回到导览",
    "Real text: a line depends on its batch": "真实文本：一行诗取决于它所在的 batch",
    "Add padding": "加入 padding",
    "Long-tailed lengths: more than half of each batch is pads. After LayerNorm every real token sits at mean 0, "
    "std 1; after naive BatchNorm they do not, because the pads (×) pulled the shared statistics.": (
        "长尾句长：每个 batch 一半以上是 pad。经过 LayerNorm，每个真实 token 的均值为 0、标准差为 1；"
        "经过朴素 BatchNorm 则不然，因为 pad（×）拉偏了共享的统计量。"
    ),
    "Mask the pads": "mask 掉 pad",
    "Masked BatchNorm leaves the pads out: in the probe its outputs no longer move when the batch gets more pads. "
    "Yet its held-out loss is no better than naive BatchNorm's: masking fixes only the pad part.": (
        "masked BatchNorm 不计入 pad：在探针中，batch 的 pad 变多时它的输出不再移动。"
        "但它的留出集 loss 并不比朴素 BatchNorm 好：mask 只解决了 pad 那一部分问题。"
    ),
    "Shrink the batch": "缩小 batch",
    "The loss itself: BatchNorm's gap to LayerNorm is near zero at batch 32 and grows as the batch shrinks to 2, "
    "fewer sentences per statistic. At this scale it is small, a few hundredths of a nat, far less than the "
    "failures before.": (
        "再看 loss 本身：batch 为 32 时 BatchNorm 与 LayerNorm 的差距接近零，随 batch 缩小到 2 而变大，"
        "因为每个统计量依据的句子更少。在这个规模下它很小，只有百分之几个 nat，远小于前面那些失效。"
    ),
    "BatchNorm works on comparable data": "数据可比时 BatchNorm 有效",
    "Post-LN gradients at init": "初始化时 Post-LN 的梯度",
    "Look at the last chart, the gradients at step 0. Pre-norm gives every block a gradient of similar size; "
    "under Post-norm blocks 1-5 get about a tenth of what the embeddings and the head get: the uneven start "
    "that makes it need warm-up.": (
        "看最后一张图，第 0 步的梯度。Pre-norm 给每个 block 的梯度大小相近；Post-norm 下第 1-5 个 block 得到的梯度"
        "只有 embedding 和输出头的十分之一左右：正是这种不均衡的起点使它需要 warm-up。"
    ),
    # ---------------------------------------------------------------- batch size
    "The Group Norm figure, live: final held-out loss against batch size for each norm. The default sweep "
    "takes well under a minute; raise steps or seeds for smoother curves.": (
        "实时重现 Group Norm 论文的图：每种 norm 的最终留出集 loss 随 batch 大小的变化。默认扫描不到一分钟；"
        "增加步数或种子数可得到更平滑的曲线。"
    ),
    "{settings} · batch sizes {sizes} · {seeds} seed(s)": "{settings} · batch 大小 {sizes} · {seeds} 个种子",
    "Press Run to sweep the batch size (takes well under a minute).": "点“运行”扫描 batch 大小（不到一分钟）。",
    "batch sizes": "batch 大小",
    "seeds per batch size": "每种 batch 大小的种子数",
    "batch size (sequences, log2 axis)": "batch 大小（序列数，log2 坐标）",
    "Final held-out loss vs batch size": "最终留出集 loss 与 batch 大小",
    "held-out loss minus LayerNorm's (nats/token)": "留出集 loss 减去 LayerNorm 的（nats/token）",
    "Mean over seeds, band from min to max. LayerNorm's curve is the control: it normalises each token alone, "
    "and falls with batch size only because bigger batches see more sentences.": (
        "多个种子的均值，色带为最小值到最大值。LayerNorm 的曲线是对照：它只对单个 token 归一化，"
        "随 batch 增大而下降只是因为更大的 batch 见到了更多句子。"
    ),
    "BatchNorm's gap to LayerNorm widens as the batch shrinks: fewer values per batch statistic, noisier "
    "normalisation (Group Norm paper, Fig. 1).": (
        "batch 越小，BatchNorm 与 LayerNorm 的差距越大：每个 batch 统计量依据的值更少，归一化噪声更大（Group Norm 论文图 1）。"
    ),
    "Include LayerNorm and another norm to see the gap chart.": "同时选择 LayerNorm 和另一种 norm 才能看到差距图。",
    "Choose at least one batch size.": "请至少选择一种 batch 大小。",
    # ---------------------------------------------------------------- padding
    "Pads are not tokens, yet naive BatchNorm counts them in every channel's mean and variance. Sweep the length "
    "distribution and batching, then see the pad-length probe. The default sweep takes well under a minute.": (
        "pad 不是 token，但朴素 BatchNorm 把它们计入每个通道的均值和方差。扫描句长分布和组 batch 方式，"
        "再看 pad 长度探针。默认扫描不到一分钟。"
    ),
    "{settings} · lengths {lengths} · batching {batching} · {seeds} seed(s)": (
        "{settings} · 句长 {lengths} · 组 batch {batching} · {seeds} 个种子"
    ),
    "Press Run to sweep length distributions and batching (well under a minute).": "点“运行”扫描句长分布和组 batch 方式（不到一分钟）。",
    "length distributions": "句长分布",
    "seeds": "种子数",
    "Final held-out loss per length distribution and batching": "各句长分布与组 batch 方式下的最终留出集 loss",
    "Each panel: one batching; along the axis, the length distributions with the padding they cause. Each "
    "setting has its own held-out sentences, so compare norms within a setting.": (
        "每个面板对应一种组 batch 方式；横轴是各句长分布及其造成的 pad 比例。每种设置有自己的留出集句子，所以请在同一设置内比较 norm。"
    ),
    "loss minus LayerNorm's (nats/token)": "loss 减去 LayerNorm 的（nats/token）",
    "LayerNorm is the zero line: it never sees pads. Masking removes the pads from BatchNorm's statistics but "
    "leaves fewer values in them. Bucketing removes most pads but puts sentences of one length in each batch, so "
    "BatchNorm's batch statistics carry the length (when the sentence ends): a shortcut the model learns and "
    "loses at inference, with running averages.": (
        "LayerNorm 就是零线：它从不看到 pad。mask 把 pad 从 BatchNorm 的统计量中去掉，但统计量依据的值也变少了。"
        "分桶去掉了大部分 pad，却让每个 batch 里的句子等长，于是 BatchNorm 的 batch 统计量携带了句长（句子何时结束）："
        "这是模型学到的捷径，到推理时改用滑动平均就失效了。"
    ),
    "Pad-length probe: the same batch, padded longer": "pad 长度探针：同一个 batch，补更长的 pad",
    "How far each real token's output moves when its batch gets more pads": "batch 中 pad 变多时，每个真实 token 的输出移动了多少",
    "Short held-out sentences padded to their longest, then to the maximum length, scored with batch statistics. "
    "Naive BatchNorm's outputs move (the pads shift its statistics); masked BatchNorm and LayerNorm stay at "
    "exactly 0. × = pad.": (
        "较短的留出集句子先补 pad 到其中最长的句子，再补到最大长度，都用 batch 统计量打分。"
        "朴素 BatchNorm 的输出会移动（pad 改变了它的统计量）；masked BatchNorm 和 LayerNorm 恰好为 0。× = pad。"
    ),
    "{norm}: largest move": "{norm}：最大移动",
    "Choose at least one length distribution and one batching.": "请至少选择一种句长分布和一种组 batch 方式。",
    # ---------------------------------------------------------------- per-token statistics
    "Train a run, then pick a norm layer: each token's mean and standard deviation over its channels, before and "
    "after the norm, for one held-out batch of the training size (batch statistics).": (
        "先训练一次，再选一个 norm 层：对一个与训练同样大小的留出集 batch（使用 batch 统计量），"
        "看每个 token 在其各通道上的均值和标准差，norm 之前与之后。"
    ),
    "Press Run to train and look inside the norm layers (a few seconds).": "点“运行”训练并查看 norm 层内部（几秒钟）。",
    "norm layer": "norm 层",
    "block{i}.norm1 precedes attention, norm2 the MLP; 'final' precedes the head.": (
        "block{i}.norm1 在 attention 之前，norm2 在 MLP 之前；“final” 在输出头之前。"
    ),
    "model": "模型",
    "after training": "训练后",
    "at initialization": "初始化时",
    "The run was stopped before training finished; per-token statistics need the trained models.": (
        "运行在训练完成前被停止；逐 token 统计量需要训练好的模型。"
    ),
    "'no norm' has no norm layer to look into: choose another norm.": "“不归一化”没有 norm 层可看：请选择其他 norm。",
    "{norm}: each token off (0, 1)": "{norm}：每个 token 偏离 (0, 1)",
    "each channel off (0, 1)": "每个通道偏离 (0, 1)",
    "After the norm, over each real token's channels: mean |mean| + mean |std − 1|. LayerNorm's target: 0 under "
    "LayerNorm.": "norm 之后，按每个真实 token 的各通道计算：mean |mean| + mean |std − 1|。这是 LayerNorm 的目标：在 LayerNorm 下为 0。",
    "After the norm, over the real tokens of each channel: mean |mean| + mean |std − 1|. BatchNorm's target: 0 "
    "under masked BatchNorm; pads spoil it under naive BatchNorm.": (
        "norm 之后，按每个通道的真实 token 计算：mean |mean| + mean |std − 1|。这是 BatchNorm 的目标："
        "在 masked BatchNorm 下为 0；在朴素 BatchNorm 下被 pad 破坏。"
    ),
    "Each token's mean over channels ({where})": "每个 token 在各通道上的均值（{where}）",
    "Each token's std over channels ({where})": "每个 token 在各通道上的标准差（{where}）",
    "Left: the norm's input; right: its output x̂ (before gain and bias), each with its own colour scale. After "
    "LayerNorm every token's mean is 0; after BatchNorm tokens keep their own offsets, and naive BatchNorm's pads "
    "(×) pull the shared mean.": (
        "左：norm 的输入；右：它的输出 x̂（乘增益、加偏置之前），各用自己的色标。经过 LayerNorm 每个 token 的均值都是 0；"
        "经过 BatchNorm，各 token 保留自己的偏移，朴素 BatchNorm 的 pad（×）还会拉动共享的均值。"
    ),
    "After LayerNorm every token's std is 1 (one flat colour); after BatchNorm it varies from token to token and "
    "from the first position to the rest.": (
        "经过 LayerNorm 每个 token 的标准差都是 1（一片同色）；经过 BatchNorm 它随 token 而变，第一个位置与其余位置也不同。"
    ),
    "How much of each channel's variance over real tokens lies between sequences (whole sentences sitting higher "
    "or lower) rather than within them: what a batch statistic mixes.": (
        "每个通道在真实 token 上的方差中，有多少来自序列之间（整句偏高或偏低）而非序列之内：这正是 batch 统计量混在一起的东西。"
    ),
    # ---------------------------------------------------------------- train vs inference
    "BatchNorm trains with the statistics of the current batch and serves with running averages. LayerNorm "
    "computes the same thing in both modes.": (
        "BatchNorm 训练时用当前 batch 的统计量，推理时用滑动平均（running statistics）。LayerNorm 在两种模式下计算完全相同。"
    ),
    "Press Run to train BatchNorm, masked BatchNorm and LayerNorm (a few seconds).": (
        "点“运行”训练 BatchNorm、masked BatchNorm 和 LayerNorm（几秒钟）。"
    ),
    "{norm}: eval mode − batch stats": "{norm}：eval 模式 − batch 统计量",
    "Final held-out loss with running statistics minus with batch statistics (nats/token)": (
        "最终留出集 loss：用 running 统计量的减去用 batch 统计量的（nats/token）"
    ),
    "batch dependence: max |Δ logit| = {value:.3g}": "batch 依赖性：max |Δ logit| = {value:.3g}",
    "Train/inference gap over training": "训练过程中的训练/推理差距",
    "eval-mode minus batch-stats loss (nats/token)": "eval 模式 loss 减去 batch 统计量 loss（nats/token）",
    "Held-out loss with running averages (as deployed) minus with batch statistics (as in training). LayerNorm "
    "sits at 0: it computes the same thing in both modes.": (
        "用滑动平均（部署时）的留出集 loss 减去用 batch 统计量（训练时）的。LayerNorm 位于 0：两种模式下它的计算完全相同。"
    ),
    "Held-out loss, both ways": "留出集 loss，两种方式",
    "Add a BatchNorm variant to see the distance between batch and running statistics.": (
        "加入一种 BatchNorm 变体，才能看到 batch 统计量与 running 统计量之间的距离。"
    ),
    "statistic": "统计量",
    "batch vs running mean: (1/C)·‖μ_B − μ_run‖": "batch 均值 vs running 均值：(1/C)·‖μ_B − μ_run‖",
    "batch vs running variance: (1/C)·‖σ²_B − σ²_run‖": "batch 方差 vs running 方差：(1/C)·‖σ²_B − σ²_run‖",
    "TID of the mean: mean_c |μ_run − μ_B| / σ_B": "均值的 TID：mean_c |μ_run − μ_B| / σ_B",
    "TID of the std: mean_c |σ_run / σ_B − 1|": "标准差的 TID：mean_c |σ_run / σ_B − 1|",
    "Batch statistics vs running statistics, per BN layer": "各 BN 层的 batch 统计量 vs running 统计量",
    "Each training batch's statistics against the running averages inference will use (PowerNorm, Fig. 2; TID: "
    "Wang et al. 2022). Large or spiky values: the model trains on one normalisation and is served another.": (
        "每个训练 batch 的统计量与推理时将使用的滑动平均之间的差距（PowerNorm 图 2；TID：Wang et al. 2022）。"
        "数值大或有尖峰：模型训练时用一种归一化，上线时却用另一种。"
    ),
    "One held-out sentence placed in 8 different random batches, scored with batch statistics: one line per "
    "batch. Under LayerNorm the lines coincide; under BatchNorm the same sentence gets different predictions "
    "depending on its companions.": (
        "把同一个留出集句子放进 8 个不同的随机 batch，用 batch 统计量打分：每个 batch 一条线。"
        "LayerNorm 下这些线重合；BatchNorm 下同一个句子的预测随同 batch 的其他句子而变。"
    ),
    # ---------------------------------------------------------------- gradients
    "Gradient norms over training, per block, and at initialization for Pre- vs Post-norm.": (
        "训练过程中各 block 的梯度范数，以及初始化时 Pre-norm 与 Post-norm 的对比。"
    ),
    "Press Run to train and record gradient norms (a few seconds).": "点“运行”训练并记录梯度范数（几秒钟）。",
    "{settings} · init profile with {layers} layers": "{settings} · 初始化剖面 {layers} 层",
    "layers for the initialization profile": "初始化剖面的层数",
    "The profile uses a deeper model than the training run.": "剖面使用比训练运行更深的模型。",
    "gradients at initialization, Pre and Post…": "初始化时的梯度，Pre 与 Post…",
    "writing: every model continues the same prompts…": "生成：每个模型续写同样的开头…",
    "Global gradient norm before clipping (the run clips at 1). Compare the level and the spikes across norms.": (
        "裁剪前的全局梯度范数（训练时裁剪阈值为 1）。比较各 norm 的水平和尖峰。"
    ),
    "Which part of the model the gradient flows into, step by step (colour on a log scale, steps binned): look "
    "for blocks that go dark (vanishing) or bright (exploding) under one norm only.": (
        "梯度逐步流向模型的哪个部分（颜色为对数刻度，步数分箱）：留意只在某一种 norm 下变暗（消失）或变亮（爆炸）的 block。"
    ),
    "At step 0, averaged over 4 batches. Pre-norm: every block gets a gradient of similar size. Post-norm: the "
    "norm sits on the residual path, and the gradient reaching the blocks differs by orders of magnitude from "
    "the embeddings' and the head's: the uneven start that makes it need warm-up (Xiong et al. 2020).": (
        "第 0 步，4 个 batch 的平均。Pre-norm：每个 block 得到的梯度大小相近。Post-norm：norm 位于残差路径上，"
        "到达各 block 的梯度与 embedding 和输出头的梯度相差几个数量级：正是这种不均衡的起点使它需要 warm-up（Xiong et al. 2020）。"
    ),
    # ---------------------------------------------------------------- what each model writes, the causality map
    "Held-out loss minus LayerNorm's": "留出集 loss 减去 LayerNorm 的",
    "The held-out gap to LayerNorm, zoomed in: above the grey zero line a norm is worse than LayerNorm. Dashed: eval "
    "mode, as deployed; dotted: with batch statistics.": (
        "放大看与 LayerNorm 的留出集差距：在灰色零线以上，表示该 norm 比 LayerNorm 差。虚线：eval 模式（部署时的样子）；"
        "点线：用 batch 统计量。"
    ),
    "What each model writes": "每个模型写出的文字",
    "No model to write: every model diverged.": "没有可以生成文字的模型：所有模型都发散了。",
    "prompt": "开头",
    "The data behind this table": "这张表背后的数据",
    "Each model continues the same openings of held-out sentences in eval mode, as it would be deployed, sampling at "
    "temperature {temperature} with the same random numbers: where two lines differ, the models differ. ⏎: the model "
    "ended the sentence; …: it reached the last position.": (
        "每个模型在 eval 模式下（即部署时的样子）续写同样的留出集句子开头，以温度 {temperature} 采样，并使用同一组随机数："
        "两行不同之处，就是模型不同之处。⏎：模型结束了句子；…：写到了最后一个位置。"
    ),
    "The comparability of the tasks is not stored: run python -m core.precompute.": (
        "各任务的可比性数据没有保存：请运行 python -m core.precompute。"
    ),
    # ---------------------------------------------------------------- chart titles, axes and legends (core/charts/)
    "by chance (%)": "随机打乱时（%）",
    "Which inputs each output depends on": "每个输出依赖哪些输入",
    "batch statistics (as in training)": "batch 统计量（训练时）",
    "running statistics (as deployed)": "running 统计量（部署时）",
    "changed input position j": "被改动的输入位置 j",
    "output position i": "输出位置 i",
    "max |Δ logit|": "最大 |Δ logit|",
    "max |Δ logit| across batches": "不同 batch 间的最大 |Δ logit|",
    "causal (a decoder)": "因果（解码器）",
    "bidirectional (an encoder)": "双向（编码器）",
    "statistics": "统计量",
    "gap to LayerNorm (nats/token)": "与 LayerNorm 的差距（nats/token）",
    "The same sentence in different batches": "同一个句子放在不同的 batch 里",
    "Values that share the picked value's mean and variance": "与选中的值共享均值和方差的值",
    "the picked value": "选中的值",
    "not pooled with it": "不与它一起汇总",
    "Gradient norm per block over training": "训练过程中各 block 的梯度范数",
    "Gradient norms at initialization, per layer": "初始化时各层的梯度范数",
    "Variance between vs within sequences (real tokens)": "序列之间 vs 序列之内的方差（真实 token）",
    "between-sequence share of the variance (%)": "方差中序列之间的占比（%）",
    "before the norm (input)": "norm 之前（输入）",
    "after the norm (x̂)": "norm 之后（x̂）",
    "random batches": "随机组成的 batch",
    "batches bucketed by length": "按长度分桶的 batch",
    "length distribution (padding of training batches)": "句长分布（训练 batch 的 pad 比例）",
    "part of the model (input → output)": "模型的部分（输入 → 输出）",
    "gradient norm at init (L2)": "初始化时的梯度范数（L2）",
    "gradient norm (L2)": "梯度范数（L2）",
    "grad norm": "梯度范数",
    "mean grad norm": "平均梯度范数",
    "held-out loss (nats/token)": "留出集 loss（nats/token）",
    "mean over seeds": "各种子的均值",
    "loss (nats/token)": "loss（nats/token）",
    "min over seeds": "各种子中的最小值",
    "max over seeds": "各种子中的最大值",
    "mean over channels": "各通道的均值",
    "std over channels": "各通道的标准差",
    "p(true next token)": "p（真实的下一个 token）",
    "position in the sentence": "句中位置",
    "train batch": "训练 batch",
    "global gradient norm": "全局梯度范数",
    "eval mode − batch stats": "eval 模式 − batch 统计量",
    "curve": "曲线",
    "real tokens seen": "已见的真实 token 数",
    "run": "运行",
    "value": "数值",
    "step": "步",
    "role": "角色",
    "(a) one of its own later tokens": "(a) 它自己后面的一个 token",
    "(b) one token of another sentence": "(b) 另一个句子的一个 token",
    "(c) its length (cut shorter)": "(c) 它的长度（截短）",
    "(d) the batch around it": "(d) 它所在的 batch",
    "Backward: the same placements, each a training-mode forward and backward of that sentence's own loss; the relative spread of the parameter gradient (log axis). Batch Renormalization's backward goes through the batch mean and variance and PowerNorm's approximated backward through the batch's quadratic mean, so both still learn from a sentence differently with different companions; LayerNorm and GroupNorm do not.": "反向：同样的放置方式，每次以训练模式对该句子自身的 loss 做一次前向和反向；参数梯度的相对离散度（对数轴）。Batch Renormalization 的反向经过 batch 的均值和方差，PowerNorm 的近似反向经过 batch 的二次均值，所以同一个句子和不同的同伴在一起时，两者从中学到的仍然不同；LayerNorm 和 GroupNorm 不会。",
    "Batch Renormalization: the share of its channel-steps over training whose r or d was at its bound (per step: the metric renorm_clipped). Its first 50 steps are plain BatchNorm (every channel clipped); a clipped channel normalises with the batch's statistics.": "Batch Renormalization：训练过程中 r 或 d 落在边界上的 通道×步 所占比例（逐步指标：renorm_clipped）。前 50 步就是普通 BatchNorm（每个通道都被裁剪）；被裁剪的通道用 batch 的统计量归一化。",
    "Batch statistics carry what the batch holds: the other sentences, every sentence's length and its later tokens (see What moves a sentence's predictions below). With them BatchNorm's batch-stats loss (dotted) can be optimistically low while its eval-mode loss (dashed) is worse.": "batch 统计量携带了 batch 里的东西：其他句子、每个句子的长度以及它后面的 token（见下方“是什么改变了一个句子的预测”）。用它们时，BatchNorm 的 batch 统计量 loss（点线）可能乐观地偏低，而 eval 模式的 loss（虚线）更差。",
    "Each cell: the KL divergence of the prediction at position i (row) when the token at position j (column) of the same sentence is changed, on the longest held-out sentences. Above the diagonal, a later token changes an earlier prediction: channel (a) above, position by position. Causal attention forbids it; BatchNorm's batch statistics let it in, and with running statistics it is gone.": "每个格子：改变同一句子第 j 个位置（列）的 token 时，第 i 个位置（行）预测分布的 KL 散度，取最长的留出句子。对角线上方表示后面的 token 改变了前面的预测：即上图的通道 (a)，逐位置展开。因果注意力禁止这样；BatchNorm 的 batch 统计量把它放了进来，用滑动统计量时它就消失了。",
    "Each position's values of one channel at the norm's input over the held-out real tokens of the trained LayerNorm model (dot and bar: mean ± sd), against the one mean and σ of all of them pooled (dashed line and band), which a BatchNorm over these tokens would normalise every position with. On the Tang poems the positions sit in ranges of their own; on the control task they overlap.": "训练好的 LayerNorm 模型在 norm 输入处某一个通道的值，按位置统计留出集的真实 token（点和竖线：均值 ± 标准差），对比把它们全部汇总后的一个均值和 σ（虚线和色带）——对这些 token 做 BatchNorm 时，每个位置都用这一对数归一化。在唐诗上，各位置落在各自的区间；在对照任务上，它们互相重叠。",
    "Forward: one held-out sentence placed in 8 random batches after training, normalised as in training: the largest difference of its logits (log axis; exact zeros drawn at 1e-8). BatchNorm depends on the batch; per-token norms and a warm PowerNorm do not, nor does Batch Renormalization where none of its corrections is clipped (its training forward then equals its inference forward).": "前向：训练后把一个留出句子放进 8 个随机 batch，按训练时的方式归一化：它的 logits 的最大差异（对数轴；恰好为 0 的画在 1e-8）。BatchNorm 依赖 batch；逐 token 的 norm 和预热后的 PowerNorm 不依赖，Batch Renormalization 在没有任何修正被裁剪时也不依赖（此时它训练时的前向等于推理时的前向）。",
    "Held-out loss by the statistics a BatchNorm is served": "BatchNorm 部署时用哪种统计量：留出 loss",
    "How alike are the values one channel of BatchNorm pools?": "BatchNorm 的一个通道汇总的值有多相似？",
    "KL (nats)": "KL 散度（nats）",
    "KL per position (nats, log axis)": "每个位置的 KL（nats，对数轴）",
    "Measured at every norm layer's input of each task's trained LayerNorm model, over held-out real tokens (bar: the share of a channel's variance between the groups, mean over layers; tick: the same values shuffled among the groups). Grouped by position, the share is {poems:.0f}× chance on the Tang poems ({poems_pct:.0f}% of the variance), {synthetic:.0f}× on the synthetic text and {control:.0f}× on the control task ({control_pct:.0f}%), where BatchNorm matches LayerNorm. On text one channel lives in different ranges at different positions, and BatchNorm pools them all. Sentences come out near or below chance because every sentence holds all the positions; token identity is far above chance on the control task too, so it does not set the tasks apart.": "在每个任务训练好的 LayerNorm 模型的每个 norm 层输入处，对留出集的真实 token 测量（条：一个通道的方差中组间部分的占比，按层平均；刻度：把同样的值在组间随机打乱后的占比）。按位置分组时，这一占比在唐诗上是随机水平的 {poems:.0f} 倍（占方差的 {poems_pct:.0f}%），在合成文本上是 {synthetic:.0f} 倍，在对照任务上是 {control:.0f} 倍（{control_pct:.0f}%）——对照任务正是 BatchNorm 与 LayerNorm 持平的任务。在文本上，同一个通道在不同位置落在不同的区间，而 BatchNorm 把它们全部汇总。按句子分组接近或低于随机水平，因为每个句子都包含所有位置；按 token 身份分组在对照任务上也远高于随机水平，所以它不是区分这些任务的因素。",
    "Pick at least one task.": "请至少选择一个任务。",
    "The KL divergence of a held-out sentence's next-token distributions when one thing changes: (a) one of its own later tokens, (b) one token of another sentence in its batch, (c) its length (cut shorter, the rest pads), (d) the batch around it. Causal attention keeps (a) and (c) at 0 for a per-token norm, and running statistics keep (a) to (c) at 0 for every norm. {leaks}": "改变一样东西时，一个留出句子的下一个 token 分布的 KL 散度：(a) 它自己后面的一个 token，(b) 同一 batch 中另一个句子的一个 token，(c) 它的长度（截短，其余变成 pad），(d) 它所在的 batch。对逐 token 的 norm，因果注意力使 (a) 和 (c) 为 0；对每种 norm，滑动统计量都使 (a) 到 (c) 为 0。{leaks}",
    "The held-out loss of each norm with running statistics, batch statistics, statistics re-estimated after training over 300 training batches (precise BN: as batched in the run, or random), and one set re-estimated per padded length; dashed line: LayerNorm. Where per-length statistics recover the batch-statistics loss and no single estimate does, the statistics carry the sentence's length and the model learned to read it: that is the leak, not a fix, since a model writing a sentence does not know its length in advance.": "每种 norm 的留出 loss：用滑动统计量、batch 统计量、训练后在 300 个训练 batch 上重新估计的统计量（precise BN：按本次运行的分 batch 方式，或随机分 batch），以及按 pad 后长度分别重新估计的统计量；虚线：LayerNorm。如果按长度的统计量能恢复 batch 统计量的 loss，而任何单一估计都做不到，那就说明统计量携带了句子的长度，模型学会了读取它：这是泄漏本身，不是修复，因为写句子的模型事先并不知道句子的长度。",
    "The same sentence's gradient across 8 batches": "同一个句子在 8 个 batch 中的梯度",
    "What moves a sentence's predictions": "是什么改变了一个句子的预测",
    "What one channel of BatchNorm pools": "BatchNorm 的一个通道汇总了什么",
    "What one channel of BatchNorm pools, position by position": "BatchNorm 的一个通道汇总了什么（逐位置）",
    "all positions pooled: BN's one mean ± σ": "所有位置汇总：BN 的同一个均值 ± σ",
    "between the groups (%)": "组间（%）",
    "channel-steps clipped": "被裁剪的 通道×步",
    "each position: mean ± sd": "每个位置：均值 ± 标准差",
    "end of sentence": "句末",
    "every other target": "其他所有目标",
    "every target": "所有目标",
    "grouped by": "分组方式",
    "largest change": "最大变化",
    "mean": "均值",
    "mean change": "平均变化",
    "measure": "度量",
    "pad or real token": "pad 还是真实 token",
    "position, BOS left out": "位置（去掉 BOS）",
    "probing: what moves each prediction, both ways…": "探测：是什么改变了每个预测，两种统计量各测一次…",
    "re-estimated after training, batches as in the run": "训练后重新估计，按本次运行的分 batch 方式",
    "re-estimated after training, random batches": "训练后重新估计，随机分 batch",
    "re-estimated per padded length (knows the length)": "按 pad 后长度分别重新估计（知道长度）",
    "gradient's relative spread": "梯度的相对离散度",
    "scoring: the held-out loss with four kinds of statistics…": "评分：用四种统计量计算留出 loss…",
    "sd": "标准差",
    "sentence": "句子",
    "targets": "目标",
    "targets scored": "计分的目标数",
    "tasks": "任务",
    "times chance": "随机水平的倍数",
    "token identity": "token 身份",
    "tokens": "token 数",
    "% between groups": "组间占比（%）",
    "what changed": "改变了什么",
    "{norm}, largest KL: {parts}.": "{norm}，最大 KL：{parts}。",
    "A norm layer subtracts a mean and divides by a standard deviation. The whole question is\n**which values share that mean and variance**. Take the activations of a batch as a\nB × T × C block: B sequences, T positions (short sentences padded to the longest), C channels.\n\n* **BatchNorm** pools **one channel** over **every sequence and every position** of the batch, pads included.\n* **Masked BatchNorm** does the same over the **real tokens only**.\n* **LayerNorm** pools **all channels of one token**, and nothing else.\n\nThe principle: *only comparable values should share statistics.* In images, one channel at\nevery pixel of every image measures the same kind of thing, and BatchNorm works. In padded\ntext, one channel lives in different ranges at different positions of a sentence (measured below), pads\nare not tokens, and a batch of a few sentences is a noisy sample of them. So BatchNorm's statistics\ndepend on which positions, and so which lengths, a batch holds, and a model trained with them learns\nto read its batch. LayerNorm sidesteps all of it.": "归一化层减去一个均值、除以一个标准差。关键问题只有一个：**哪些值共享这个均值和方差**。把一个 batch 的激活看作 B × T × C 的立方块：B 个序列，T 个位置（短句补 pad 到最长的句子），C 个通道。\n\n* **BatchNorm** 对**一个通道**，汇总 batch 中**每个序列的每个位置**，包括 pad。\n* **Masked BatchNorm** 做同样的事，但**只汇总真实 token**。\n* **LayerNorm** 汇总**一个 token 的全部通道**，别的都不管。\n\n原则：*只有可比的值才应该共享统计量。* 在图像中，同一通道在每张图的每个像素上度量的是同一类东西，所以 BatchNorm 有效。在补了 pad 的文本中，同一通道在句子的不同位置落在不同的区间（见下方的测量），pad 也不是 token，而几个句子组成的 batch 只是它们的一个嘈杂样本。所以 BatchNorm 的统计量取决于 batch 里有哪些位置、也就是哪些长度，用它训练的模型学会了读取自己所在的 batch。LayerNorm 避开了这一切。",
    "Batch statistics in training, running averages at inference: the gap, what leaks into a sentence's predictions, and which statistics could be deployed.": "训练时用 batch 统计量，推理时用滑动平均（running statistics）：两者的差距，什么泄漏进了一个句子的预测，以及部署时能用哪种统计量。",
    "BatchNorm reads the batch": "BatchNorm 读取了所在的 batch",
    "Bucketed batches: a sentence's predictions move most when its length or another sentence changes, far more than when its own later tokens do (the leak chart). Deployed, BatchNorm's loss jumps from 1.07 to 4.65 on every target; one set of statistics per padded length gets 1.09: the statistics carry the length.": "按长度分桶的 batch：一个句子的预测在它的长度或另一个句子改变时变化最大，远大于它自己后面的 token 改变时（见泄漏图）。部署时 BatchNorm 的 loss 在每类目标上都从 1.07 跳到 4.65；按 pad 后长度各用一套统计量则得到 1.09：统计量携带了长度。",
    "In the decoder (left), PowerNorm and GroupNorm match LayerNorm and, once warm, no fix's forward depends on the batch; PowerNorm's and Batch Renormalization's gradients still do (the gradient chart). In the encoder (right), the papers' setting, BatchNorm is no worse than LayerNorm at this scale.": "在解码器中（左），PowerNorm 和 GroupNorm 与 LayerNorm 不相上下，预热之后没有一种修补方案的前向依赖 batch；但 PowerNorm 和 Batch Renormalization 的梯度仍然依赖（见梯度图）。在编码器中（右），也就是论文的设置，这个规模下 BatchNorm 并不比 LayerNorm 差。",
    "Shakespeare's lines, two to a batch. Under BatchNorm one held-out line gets other predictions in every batch it is put in, and its length, its neighbour and its later characters all move its predictions; under LayerNorm none does.": "莎士比亚的诗行，每个 batch 两行。在 BatchNorm 下，同一行留出集诗句放进不同的 batch 就得到不同的预测，它的长度、它的邻居和它后面的字符都会改变它的预测；在 LayerNorm 下都不会。",
    "The control task: fixed lengths, no pads, positions nearly alike (2% of a channel's variance lies between positions, 84% on the Tang poems). BatchNorm's gap to LayerNorm stays at zero, even at batch 2: pooling comparable values is fine.": "control 任务：定长、没有 pad、各位置几乎相同（一个通道的方差只有 2% 在位置之间，唐诗上是 84%）。即使 batch 为 2，BatchNorm 与 LayerNorm 的差距也保持为零：汇总可比的值没有问题。",
    "The story in eight one-click scenarios: first the large failures (BatchNorm reading its batch and collapsing when deployed, a sentence depending on its batch), then pads, the papers' fixes, small batches, the control task, and Post-norm.": "八个一键场景讲完整个故事：先看大的失效（BatchNorm 读取所在的 batch、部署时崩溃，句子随所在 batch 而变），再看 pad、论文中的修补方案、小 batch、control 任务，以及 Post-norm。",
    "channel value at the norm's input": "norm 输入处的通道取值",
}

# The names of the norms and the tasks, from their records (core/norm_specs.py, core/tasks.py): a new
# norm or task brings its own translation.
ZH.update({rec.labels["en"]: rec.labels["zh"] for rec in [*NORM_SPECS.values(), *TASKS.values()]})
ZH.update({spec.short["en"]: spec.short["zh"] for spec in NORM_SPECS.values()})
ZH.update({task.names["en"]: task.names["zh"] for task in TASKS.values()})
ZH.update({task.about["en"]: task.about["zh"] for task in TASKS.values()})
