"""Rule packs: built-in ones, and user packs in YAML that extend them; errors name the pack, rule id or file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgx import RecipeError
from imgx_compliance import BUILTIN_PACKS, RULES, builtin_pack, load_pack, resolve_pack


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_built_in_packs_use_only_known_rules() -> None:
    assert set(BUILTIN_PACKS) == {"amazon-main", "google-merchant", "zalando", "shopify"}
    for name in BUILTIN_PACKS:
        pack = builtin_pack(name)
        assert pack.rules and set(pack.rules) <= set(RULES)
    assert builtin_pack("amazon-main").rules["product.fill"].min == 0.85
    assert builtin_pack("shopify").rules["aspect"].level == "warning"


def test_a_user_pack_extends_overrides_drops_and_adds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: my-shop\nextends: amazon-main\nrules:\n  product.fill: {min: 0.8}\n"
        "  file.max_bytes: {max_bytes: 5000000}\ndrop: [product.count, blur]\n",
    )
    pack = resolve_pack(str(path))
    base = builtin_pack("amazon-main")
    assert pack.name == "my-shop"
    assert pack.rules["product.fill"].min == 0.8 and pack.rules["file.max_bytes"].max_bytes == 5_000_000
    assert "product.count" not in pack.rules and "blur" not in pack.rules
    assert pack.rules["size.min"] == base.rules["size.min"]
    assert set(pack.rules) == set(base.rules) - {"product.count", "blur"} | {"file.max_bytes"}


def test_an_override_keeps_the_base_settings_it_does_not_name(tmp_path: Path) -> None:
    pack = load_pack(write(tmp_path, "name: z\nextends: zalando\nrules:\n  aspect: {tolerance: 0.05}\n"))
    assert pack.rules["aspect"].tolerance == 0.05 and pack.rules["aspect"].ratio == pytest.approx(1 / 1.44)


def test_unknown_pack_and_rule_ids(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="got rule pack 'ebay'; expected one of amazon-main, google-merchant"):
        builtin_pack("ebay")
    with pytest.raises(RecipeError, match=r"got rule pack 'ebay'"):
        load_pack(write(tmp_path, "name: x\nextends: ebay\n"))
    path = write(tmp_path, "name: x\nextends: amazon-main\nrules:\n  product.fil: {min: 0.5}\n")
    with pytest.raises(RecipeError, match=rf"{path}:4: got rule id 'product.fil'; expected one of size.min"):
        load_pack(path)
    path = write(tmp_path, "name: x\nextends: amazon-main\ndrop:\n  - border\n  - logo\n")
    with pytest.raises(RecipeError, match=rf"{path}:5: got rule id 'logo'"):
        load_pack(path)


def test_malformed_packs_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nextends: amazon-main\nrules:\n  product.fill: {min: 0.8\n  border: {}\n")
    with pytest.raises(RecipeError, match=rf"{path}:5: malformed YAML"):
        load_pack(path)
    path = write(tmp_path, "name: x\nextends: amazon-main\ncolour: red\n")
    with pytest.raises(RecipeError, match=rf"{path}:3: colour: Extra inputs are not permitted"):
        load_pack(path)
    path = write(tmp_path, "name: x\nrules:\n  product.fill:\n    min: lots\n")
    with pytest.raises(RecipeError, match=rf"{path}:3: bad settings for rule 'product.fill'"):
        load_pack(path)
    with pytest.raises(RecipeError, match=rf"{write(tmp_path, '- a list')}:1: got list"):
        load_pack(tmp_path / "pack.yaml")
