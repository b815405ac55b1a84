"""Chinese search terms: bigram containment approximates substring search."""
from hypothesis import given, strategies as st

from trading.listing.search_terms import document_terms, query_terms, terms


def matches(query, doc):
    return set(query_terms(query)) <= set(terms(doc))


def test_cjk_text_is_indexed_as_characters_and_adjacent_pairs():
    assert terms("中山道路") == ["中", "山", "道", "路", "中山", "山道", "道路"]


def test_a_query_uses_bigrams_and_a_lone_character_stays_a_unigram():
    assert query_terms("中山道路") == ["中山", "山道", "道路"]
    assert query_terms("路") == ["路"]


def test_a_place_name_query_finds_a_title_that_contains_it():
    title = "中山市火炬开发区道路改造工程施工招标公告"
    assert matches("中山", title)
    assert matches("道路", title)
    assert matches("道路改造", title)
    assert matches("路", title)
    assert not matches("珠海", title)
    assert not matches("山中", title)


def test_punctuation_and_spaces_split_runs_so_no_pair_spans_them():
    assert "山道" not in terms("中山，道路")
    assert not matches("中山道路", "中山 道路")
    assert matches("中山 道路", "中山，道路")


def test_latin_words_match_whole_words_case_insensitively():
    doc = "LED显示屏采购 ZS-2026-ZFCG-00042"
    assert matches("led", doc)
    assert matches("ZFCG", doc)
    assert matches("zs-2026-zfcg-00042", doc)
    assert matches("LED 显示屏", doc)
    assert not matches("zfc", doc)


def test_full_width_letters_and_digits_fold_to_ascii():
    assert matches("abc123", "ＡＢＣ１２３型设备")
    assert "abc123" in terms("ＡＢＣ１２３")


def test_mixed_text_separates_digits_from_chinese():
    assert terms("2026年预算") == ["2026", "年", "预", "算", "年预", "预算"]
    assert matches("2026年", "中山市2026年度预算")


def test_an_empty_or_punctuation_only_query_has_no_terms():
    assert query_terms("") == []
    assert query_terms(None) == []
    assert query_terms("，。！ - ") == []


def test_terms_are_unique_so_the_array_stays_small():
    t = terms("工程工程工程")
    assert len(t) == len(set(t))


def test_fields_are_indexed_apart_so_no_bigram_spans_two_fields():
    t = document_terms("中山", "道路")
    assert "山道" not in t
    assert {"中山", "道路"} <= set(t)


HAN = st.sampled_from(list("中山市道路工程采购招标公告政府服务设备"))
WORDS = ["led", "ZFCG", "2026", "GB50300", "abc"]
WORD_SET = set(WORDS)
WORD = st.sampled_from(WORDS)
SEP = st.sampled_from([" ", "，", "-", "（", "）", "\n"])


@given(tokens=st.lists(st.one_of(HAN, WORD, SEP), min_size=1, max_size=30), data=st.data())
def test_any_substring_cut_at_token_boundaries_is_found_in_its_document(tokens, data):
    start = data.draw(st.integers(0, len(tokens) - 1))
    end = data.draw(st.integers(start + 1, len(tokens)))
    doc = "".join(tokens)
    # A latin token cut out beside another latin token would be a word fragment, which whole-word search
    # rightly misses; widen the cut to whole words instead.
    while start > 0 and tokens[start] in WORD_SET and tokens[start - 1] in WORD_SET:
        start -= 1
    while end < len(tokens) and tokens[end - 1] in WORD_SET and tokens[end] in WORD_SET:
        end += 1
    assert matches("".join(tokens[start:end]), doc)

