"""The documentation points only inside the repository, and the design's layout is true."""

from pathlib import Path
import re

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "DESIGN.md", *sorted(ROOT.glob("egs2/*/gcft1/README.md"))]


def test_links_point_to_files_in_the_repository():
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert "../shared" not in text, doc
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path = (doc.parent / target).resolve()
            assert path.is_relative_to(ROOT), (doc, target)
            assert path.exists(), (doc, target)


def test_the_design_layout_names_existing_modules():
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    layout = text.split("## 2. Layout", 1)[1].split("```")[1]
    package, names = None, []
    for line in layout.splitlines():
        match = re.match(r"^(\s*)([A-Za-z_./-]+)\s", line + " ")
        if not match:
            continue
        indent, name = len(match[1]), match[2]
        if indent == 2 and name.endswith("/"):
            package = name
        elif indent == 2 and name.endswith(".py"):
            names.append(Path("espnet_gcft") / name)
        elif indent == 4 and name.endswith(".py") and package:
            names.append(Path("espnet_gcft") / package / name)
    assert len(names) >= 15
    for name in names:
        assert (ROOT / name).is_file(), name


def test_the_readme_yaml_excerpt_is_a_shipped_config():
    """The README's model configuration is cut from the config it names, line for line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    source = re.search(r"From `([^`]+\.yaml)`", text)
    assert source, "the README names the config its excerpt comes from"
    excerpt = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = (ROOT / source[1]).read_text(encoding="utf-8")
    assert excerpt.strip() and excerpt in config, "the excerpt is not a run of lines of " + source[1]


def test_the_front_page_stays_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200
