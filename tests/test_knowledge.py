import shutil
import subprocess
import sys

import pytest
import yaml

from assistant.core.errors import KnowledgeBaseError
from assistant.core.knowledge import SEGMENT_KEYS, load_knowledge


@pytest.fixture()
def kb_copy(knowledge, tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(knowledge.directory, target)
    return target


def edit(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_committed_knowledge_base_is_valid(knowledge):
    assert tuple(knowledge.segments) == SEGMENT_KEYS
    for spec in knowledge.segments.values():
        assert 3 <= len(spec.strategy.tactics) <= 6 and spec.strategy.kpi and spec.strategy.channels


def test_error_names_file_segment_and_field(kb_copy):
    edit(kb_copy / "segments.yaml", lambda d: d["segments"][1]["strategy"].pop("kpi"))
    with pytest.raises(KnowledgeBaseError) as info:
        load_knowledge(kb_copy)
    message = str(info.value)
    assert "segments.yaml" in message and "'vip_customers'" in message and "strategy.kpi" in message


def test_missing_segment_is_named(kb_copy):
    edit(kb_copy / "segments.yaml", lambda d: d["segments"].pop(2))
    with pytest.raises(KnowledgeBaseError, match="missing segment.*browsers_without_conversion"):
        load_knowledge(kb_copy)


def test_unknown_signature_field(kb_copy):
    edit(kb_copy / "segments.yaml", lambda d: d["segments"][0]["signature"].update(shoe_size=1))
    with pytest.raises(KnowledgeBaseError, match="'casual_shoppers'.*signature.*shoe_size"):
        load_knowledge(kb_copy)


def test_unknown_placeholder_in_a_template(kb_copy):
    edit(kb_copy / "explanations.yaml", lambda d: d.update(warning="{label} is {colour}"))
    with pytest.raises(KnowledgeBaseError, match="explanations.yaml.*warning uses unknown placeholder.*colour"):
        load_knowledge(kb_copy)


def test_every_field_needs_reason_headlines(kb_copy):
    edit(kb_copy / "explanations.yaml", lambda d: d["headlines"].pop("recency_days"))
    with pytest.raises(KnowledgeBaseError, match="explanations.yaml.*headlines.*recency_days"):
        load_knowledge(kb_copy)


def test_a_headline_band_cannot_be_missing(kb_copy):
    edit(kb_copy / "explanations.yaml", lambda d: d["headlines"]["age"].pop("very_high"))
    with pytest.raises(KnowledgeBaseError, match="explanations.yaml.*headlines.age.very_high"):
        load_knowledge(kb_copy)


def test_broken_yaml_and_missing_file(kb_copy):
    (kb_copy / "segments.yaml").write_text("segments: [\n  - key: x\n  bad")
    with pytest.raises(KnowledgeBaseError, match="segments.yaml is not valid YAML"):
        load_knowledge(kb_copy)
    (kb_copy / "segments.yaml").unlink()
    with pytest.raises(KnowledgeBaseError, match="segments.yaml is missing"):
        load_knowledge(kb_copy)


def test_cli_refuses_to_start_with_a_broken_knowledge_base(kb_copy):
    edit(kb_copy / "segments.yaml", lambda d: d["segments"].pop(0))
    out = subprocess.run([sys.executable, "-m", "assistant", "segments", "--knowledge-dir", str(kb_copy)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "casual_shoppers" in out.stderr and "Traceback" not in out.stderr


def test_readme_field_table_is_generated_from_the_field_declarations():
    from pathlib import Path

    from assistant.adapters.docs import fields_markdown

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert fields_markdown() in readme, "README field table is stale: run `python -m assistant.adapters.docs`"
