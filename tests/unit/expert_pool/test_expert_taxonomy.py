"""The packaged specialty taxonomy (评标专家专业分类)."""
from expert_pool.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def test_taxonomy_has_at_least_sixty_leaves_each_named_in_chinese_and_english():
    leaves = list(TAXONOMY.leaves())
    assert len(leaves) >= 60
    for code in leaves:
        assert TAXONOMY.name(code, "zh") and TAXONOMY.name(code, "en")


def test_top_categories_cover_engineering_goods_economics_it_and_services():
    assert [TAXONOMY.name(c, "en") for c in TAXONOMY.roots()] == [
        "Engineering construction", "Goods", "Economics", "Information technology", "Services"]
    assert TAXONOMY.name("C", "zh") == "经济"


def test_leaf_codes_are_recognised_and_groups_are_not_leaves():
    assert TAXONOMY.is_leaf("A0101")
    assert not TAXONOMY.is_leaf("A01")
    assert not TAXONOMY.is_leaf("NOPE")
    assert TAXONOMY.name("A0101") == "土建"


def test_a_quota_on_a_parent_code_accepts_experts_in_any_leaf_below_it():
    assert TAXONOMY.matches("A01", "A0107")
    assert TAXONOMY.matches("A", "A0305")
    assert TAXONOMY.matches("C0101", "C0101")


def test_a_quota_does_not_accept_a_sibling_or_a_broader_code():
    assert not TAXONOMY.matches("A01", "A0201")
    assert not TAXONOMY.matches("A0101", "A01")
    assert not TAXONOMY.matches("A01", "UNKNOWN")


def test_leaves_under_a_group_are_exactly_its_children():
    assert list(TAXONOMY.leaves("C02")) == ["C0201", "C0202", "C0203"]
    assert TAXONOMY.path("C0202") == ("C", "C02", "C0202")
