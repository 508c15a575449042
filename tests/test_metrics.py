from rag.app.evaluation.scoring import contains, exact_match, f1


def test_exact_match_normalises_case_punctuation_articles_and_markers():
    assert exact_match("The Eiffel Tower! [1]", ["eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["eiffel tower"]) == 0.0


def test_f1_is_the_best_over_gold_answers():
    assert f1("in the year 1868", ["1868", "November 1868"]) == 2 * (1 / 3 * 1) / (1 / 3 + 1)
    assert f1("nothing", ["1868"]) == 0.0


def test_contains():
    assert contains("It was finished in 1868 [2].", ["1868"]) == 1.0
    assert contains("It was finished long ago.", ["1868"]) == 0.0
