"""Security basics for a public app, checked on the source.

* Raw HTML (``unsafe_allow_html=True``, ``st.html``, ``components.html``) only ever renders text
  the program itself wrote: string literals, module constants (UPPER_CASE names) and what is built
  from them (f-strings, joins, comprehensions over constants, translations of constants), or text
  passed through ``html.escape``. Anything else (a widget value, a URL parameter, an uploaded
  file's text, a function argument) fails the test, with its file and line.
* Nothing the app runs deserialises objects (pickle, torch.load, joblib, eval ...): an upload is
  only ever text.
* Streamlit's upload cap (``server.maxUploadSize``) is set small.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_SOURCES = sorted([ROOT / "streamlit_app.py", *(ROOT / "app_pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])
APP_SOURCES = sorted([*UI_SOURCES, *(ROOT / "core").rglob("*.py")])
MAX_UPLOAD_MB = 1

# Functions whose result is static when their arguments are: formatting and the translation lookup.
PURE = {"t", "str", "format", "join", "fmt_number", "len", "round", "int", "float", "upper", "lower", "strip", "get"}
ESCAPES = {"escape"}  # html.escape(x): safe whatever x is
RAW_HTML_CALLS = {"html", "iframe"}  # st.html(body), components.html(body), components.iframe(src)


def _is_constant_name(name: str) -> bool:
    return name.isupper() or (name.startswith("_") and name[1:].isupper())


class _Checker:
    """Decides whether an expression is built only from text the program wrote."""

    def __init__(self, tree: ast.AST):
        self.tree = tree

    def static(self, node: ast.AST, env: set[str]) -> bool:
        match node:
            case ast.Constant():
                return True
            case ast.JoinedStr(values=values):
                return all(self.static(v, env) for v in values)
            case ast.FormattedValue(value=value, format_spec=spec):
                return self.static(value, env) and (spec is None or self.static(spec, env))
            case ast.BinOp(left=left, right=right):
                return self.static(left, env) and self.static(right, env)
            case ast.Name(id=name):
                return _is_constant_name(name) or name in env
            case ast.Attribute(value=value):
                return self.static(value, env)
            case ast.Subscript(value=value, slice=index):
                return self.static(value, env) and self.static(index, env)
            case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
                return all(self.static(e, env) for e in elts)
            case ast.IfExp(body=body, orelse=orelse):  # the test only picks between two static texts
                return self.static(body, env) and self.static(orelse, env)
            case ast.GeneratorExp() | ast.ListComp() | ast.SetComp():
                inner = self._comprehension_env(node.generators, env)
                return inner is not None and self.static(node.elt, inner)
            case ast.Call(func=func, args=args, keywords=keywords):
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ESCAPES:
                    return True
                receiver_ok = not isinstance(func, ast.Attribute) or self.static(func.value, env)
                return (
                    name in PURE
                    and receiver_ok
                    and all(self.static(a, env) for a in args)
                    and all(self.static(k.value, env) for k in keywords)
                )
        return False

    def _comprehension_env(self, generators: list[ast.comprehension], env: set[str]) -> set[str] | None:
        inner = set(env)
        for gen in generators:
            if not self.static(gen.iter, inner):
                return None
            inner |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        return inner

    def local_env(self, scope: ast.AST) -> set[str]:
        """Names assigned in ``scope`` (a function or module) only ever from static expressions,
        and loop variables over static iterables; found by iterating to a fixed point."""
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name):
                            assigned.setdefault(n.id, []).append(node.value)
            elif isinstance(node, ast.AugAssign | ast.AnnAssign) and isinstance(node.target, ast.Name):
                if node.value is not None:
                    assigned.setdefault(node.target.id, []).append(node.value)
            elif isinstance(node, ast.For):
                for n in ast.walk(node.target):
                    if isinstance(n, ast.Name):
                        assigned.setdefault(n.id, []).append(node.iter)
        params = {a.arg for a in ast.walk(scope) if isinstance(a, ast.arg)}
        env: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, values in assigned.items():
                if name not in env and name not in params and all(self.static(v, env) for v in values):
                    env.add(name)
                    changed = True
        return env


def raw_html_violations(source: str, filename: str = "<source>") -> list[str]:
    """Each call that renders raw HTML from anything but static text, as 'file:line: code'."""
    tree = ast.parse(source, filename)
    checker = _Checker(tree)
    scopes = {id(tree): checker.local_env(tree)}
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node

    def env_of(node: ast.AST) -> set[str]:
        scope = node
        while id(scope) in parents and not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            scope = parents[id(scope)]
        if id(scope) not in scopes:
            scopes[id(scope)] = checker.local_env(scope) | scopes[id(tree)]
        return scopes[id(scope)]

    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        unsafe = next((k for k in node.keywords if k.arg == "unsafe_allow_html"), None)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if unsafe is None and name not in RAW_HTML_CALLS:
            continue
        if unsafe is not None:
            if not isinstance(unsafe.value, ast.Constant):  # the switch itself must be a literal
                bad.append(f"{filename}:{node.lineno}: unsafe_allow_html set from an expression")
                continue
            if unsafe.value.value is not True:
                continue
        bodies = node.args[:1] + [k.value for k in node.keywords if k.arg in ("body", "src", "html")]
        if not bodies or not all(checker.static(b, env_of(node)) for b in bodies):
            bad.append(f"{filename}:{node.lineno}: raw HTML from non-constant text: {ast.unparse(node)[:120]}")
    return bad


def deserialisation_uses(source: str, filename: str = "<source>") -> list[str]:
    """Imports and calls that turn bytes into objects (or run text as code)."""
    tree = ast.parse(source, filename)
    bad = []
    risky_modules = {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(n and n.split(".")[0] in risky_modules for n in names):
                bad.append(f"{filename}:{node.lineno}: imports {', '.join(n for n in names if n)}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("eval", "exec", "compile", "__import__"):
                bad.append(f"{filename}:{node.lineno}: {func.id}()")
            elif isinstance(func, ast.Attribute):
                owner = ast.unparse(func.value)
                if (owner, func.attr) in {("torch", "load"), ("yaml", "load"), ("yaml", "unsafe_load")}:
                    bad.append(f"{filename}:{node.lineno}: {owner}.{func.attr}()")
                elif func.attr == "read_pickle":
                    bad.append(f"{filename}:{node.lineno}: read_pickle()")
                elif func.attr == "load" and any(
                    k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in node.keywords
                ):
                    bad.append(f"{filename}:{node.lineno}: load(allow_pickle=...)")
    return bad


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------- the checks can fail
@pytest.mark.parametrize(
    "snippet",
    [
        'name = st.text_input("name")\nst.markdown(f"<b>{name}</b>", unsafe_allow_html=True)',
        'st.markdown(st.query_params.get("x", ""), unsafe_allow_html=True)',
        'def show(text):\n    st.markdown("<p>" + text + "</p>", unsafe_allow_html=True)',
        "html = upload.read().decode()\nst.html(html)",
        "rows = [f'<td>{v}</td>' for v in df.value]\nst.markdown(''.join(rows), unsafe_allow_html=True)",
        'flag = True\nst.markdown("<b>x</b>", unsafe_allow_html=flag)',
        'label = t("hello {name}", name=st.session_state["who"])\nst.write(label, unsafe_allow_html=True)',
        "components.html(body=request_text)",
    ],
)
def test_the_html_check_flags_user_controlled_text(snippet):
    assert raw_html_violations(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'st.markdown("<b>fixed</b>", unsafe_allow_html=True)',
        "swatches = ''.join(f'<span style=\"color:{COLORS[n]}\">{LABELS[n]}</span>' for n in NORMS)\n"
        'where.markdown(f"**Colours**{swatches}", unsafe_allow_html=True)',
        "st.markdown(f\"<i>{html.escape(st.text_input('x'))}</i>\", unsafe_allow_html=True)",
        'st.markdown(t("Colours") + LEGEND, unsafe_allow_html=True)',
        "st.markdown(user_text)",  # no raw HTML: Streamlit escapes it
        "st.markdown(user_text, unsafe_allow_html=False)",
    ],
)
def test_the_html_check_accepts_text_the_program_wrote(snippet):
    assert not raw_html_violations(snippet), snippet


def test_the_deserialisation_check_flags_unsafe_loads():
    for snippet in (
        "import pickle",
        "from joblib import load",
        "torch.load(f)",
        "pd.read_pickle(f)",
        "np.load(f, allow_pickle=True)",
        "eval(text)",
    ):
        assert deserialisation_uses(snippet), snippet
    assert not deserialisation_uses("model.eval()\nnp.load(f)\ntext = raw.decode('utf-8')")


# ---------------------------------------------------------------- the app
def test_no_raw_html_from_user_controlled_text():
    assert UI_SOURCES, "no sources found"
    bad = [v for path in UI_SOURCES for v in raw_html_violations(path.read_text(), _rel(path))]
    assert not bad, "\n".join(bad)


def test_nothing_deserialises_objects():
    bad = [v for path in APP_SOURCES for v in deserialisation_uses(path.read_text(), _rel(path))]
    assert not bad, "\n".join(bad)


def test_upload_size_is_capped():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    cap = config.get("server", {}).get("maxUploadSize")
    assert isinstance(cap, int) and 0 < cap <= MAX_UPLOAD_MB, f"server.maxUploadSize is {cap!r}, want <= 1 (MB)"
