"""The mutants of `bench/mutation.py`'s modules that no test can kill: they do not change
behaviour. Each carries its reason; they are listed apart and left out of the score.
Names are mutmut's (stable while the function's code is unchanged); a name that no
longer exists is simply never matched.
"""

_S = "evals.stats."
_DTYPE = "numeric input: the arithmetic converts anyway (sums, means, comparisons are equal)"
_F64 = "astype(None) is float64, the same as astype(float)"
_CASE = "scipy lower-cases the method name"
_G = "evals.gate."
_D = "evals.deltas."
_R = "evals.rules."
_LOCALE = "no encoding means the locale's: UTF-8 here and in CI"
_CODEC = '"UTF-8" names the same codec as "utf-8"'
_C = "tools.calls."
_SHORT = (
    "a call body of at most 308 characters cannot hold a 309-digit number (a 1025-bit integer, "
    "a float past 1.8e308 written without exponent) or 10,001 values: sanitising it or not "
    "gives the same call"
)
EQUIVALENT: dict[str, str] = {
    f"{_C}x__plainly_json__mutmut_3": _SHORT,
    f"{_C}x__plainly_json__mutmut_4": _SHORT,
    f"{_C}x__plainly_json__mutmut_10": "64 brackets nest at most 64 containers, levels 0..63, "
    "which sanitize allows: sanitising them or not gives the same call",
    **{
        f"rewards.refund.x__checked_before__mutmut_{i}": "the initial state is only ever "
        "compared with 'ok' and 'error'"
        for i in (1, 2, 3)
    },
    "rewards.refund.x_final_words__mutmut_9": "no words at all: '' and 'XXXX' assert nothing "
    "to the claim reader and hold no deflection phrase",
    **{f"{_S}x__exact_ends__mutmut_{i}": "Wilson bounds never exceed 1" for i in (11, 27)},
    **{f"{_S}x_design_effect__mutmut_{i}": _DTYPE for i in (3, 5)},
    **{f"{_S}x_mean__mutmut_{i}": _DTYPE for i in (3, 5)},
    **{f"{_S}x_means__mutmut_{i}": _DTYPE for i in (4, 6)},
    f"{_S}x_means__mutmut_17": "singleton clusters give the plain mean's resampled ratios",
    f"{_S}x_means__mutmut_42": _F64,
    f"{_S}x_design_effect__mutmut_18": _F64,
    **{f"{_S}x_ratio__mutmut_{i}": _DTYPE for i in (3, 5, 8, 10)},
    **{f"{_S}x_quantile__mutmut_{i}": _DTYPE for i in (3, 5)},
    f"{_S}x_quantile__mutmut_19": "all equal to values[1] iff all equal to values[0] (n >= 2)",
    **{f"{_S}x_paired_delta__mutmut_{i}": _DTYPE for i in (4, 6, 9, 11)},
    **{f"{_S}x_paired_deltas__mutmut_{i}": _DTYPE for i in (4, 6, 10, 12)},
    f"{_S}x_paired_deltas__mutmut_42": _F64,
    **{
        f"{_S}x__mcnemar_p__mutmut_{i}": "a concordant cell: the exact McNemar test ignores it"
        for i in (4, 15, 16, 17)
    },
    f"{_S}x__mcnemar_p__mutmut_22": "exact=True is statsmodels' default",
    f"{_S}x__wilcoxon_p__mutmut_12": "scipy lower-cases zero_method",
    f"{_S}xǁ_ResampledMeansǁ__call____mutmut_12": _F64,
    f"{_S}x__bootstrap_rows__mutmut_8": "a one-observation row is constant: never to do",
    f"{_S}x__bootstrap_rows__mutmut_12": "a row differs from its element 1 iff it is not constant",
    f"{_S}x__bootstrap_rows__mutmut_16": "with one observation the sizes are all equal",
    f"{_S}x__bootstrap_rows__mutmut_20": "sizes differ from sizes[1] iff they are not all equal",
    **{f"{_S}x__bootstrap_rows__mutmut_{i}": _CASE for i in (27, 28, 30, 33)},
    **{
        f"{_S}x__bootstrap_rows__mutmut_{i}": "a warning filter: silences warnings only"
        for i in (37, 39, 43, 45)
    },
    **{
        f"{_S}x__bootstrap_rows__mutmut_{i}": "batch size: memory only, the same resamples"
        for i in (52, 60, 74)
    },
    **{
        f"{_S}x__bootstrap_rows__mutmut_{i}": "scipy infers vectorized from the axis parameter"
        for i in (53, 61)
    },
    **{
        f"{_S}x__bootstrap_rows__mutmut_{i}": "zip strictness: the lengths are always equal"
        for i in (85, 89, 90)
    },
    f"{_S}x__bootstrap_rows__mutmut_91": "BCa's ends are both finite or both NaN",
    **{f"{_S}x__check_k__mutmut_{i}": _DTYPE for i in (3, 5, 8, 10)},
    **{
        f"{_S}x__has_repeats__mutmut_{i}": "no repeats in 0 or 1 clusters either way"
        for i in (4, 5)
    },
    _G + "x__field__mutmut_12": "every field a validated rule reads exists on its record",
    **{
        f"{_G}x__check_rule__mutmut_{i}": "`where` only names a missing field: validated "
        "rules never reach it"
        for i in (20, 54, 102)
    },
    _G + "x__check_rule__mutmut_90": 'float("NAN") is NaN',
    _G + "x__check_rule__mutmut_108": "getattr(None, field, None) is None as well",
    _G + "x__check_rule__mutmut_113": "the field exists on the baseline's Estimate",
    **{f"{_G}{m}": _LOCALE for m in ("x_read_canary_log__mutmut_5", "x_main__mutmut_12")},
    _G + "x_main__mutmut_14": _LOCALE,
    **{f"{_G}{m}": _CODEC for m in ("x_read_canary_log__mutmut_7", "x_main__mutmut_18")},
    **{f"{_G}x_canary_metrics__mutmut_{i}": _DTYPE for i in (7, 9, 12, 14, 18, 20)},
    _G + "x__check_no_regressions__mutmut_22": "Δ exactly −tolerance − 1e-12 does not occur",
    _G + "x__check_no_regressions__mutmut_27": "at Δ = 0 as many pairs are gained as lost: "
    "exact McNemar p = 1, never < alpha",
    _G + "x_run_gate__mutmut_63": "only delta rules read it, and they need a baseline "
    "(refused before)",
    **{f"{_G}x_run_gate__mutmut_{i}": "only= limits the work, not the values" for i in (73, 79)},
    **{f"{_D}x__values__mutmut_{i}": _F64 for i in (5, 29)},
    **{
        f"{_D}x__slice_deltas__mutmut_{i}": "labels only name zero pairs, filtered out before"
        for i in (78, 97)
    },
    **{
        f"{_D}x__slice_deltas__mutmut_{i}": "zip strictness: the lengths are always equal"
        for i in (113, 116, 117)
    },
    _R + "xǁ_LineParserǁtake__mutmut_9": "peek clamps the position to the end token",
    _R + "xǁ_LineParserǁpeek__mutmut_7": "position + lookahead never passes the end token",
    **{f"{_R}xǁ_LineParserǁaccept__mutmut_{i}": "accept only sees punctuation" for i in (6, 7)},
    _R + "xǁ_LineParserǁ_bind__mutmut_6": "None and False are both false",
    _R + "xǁ_LineParserǁ_bind__mutmut_57": "an unbound keyword is always still positional",
    **{f"{_R}x_load_rules__mutmut_{i}": _CODEC for i in (9, 67)},
    **{f"{_R}x_load_rules__mutmut_{i}": "a start of None is 0" for i in (13, 49)},
    **{
        f"{_R}x_load_rules__mutmut_{i}": "line_end is never 0: the bad byte is at exc.start"
        for i in (32, 33)
    },
    _R + "x__tokenize__mutmut_44": "every alternative is a named group: lastgroup is set",
    **{
        f"{_R}x__tokenize__mutmut_{i}": "'X' always tokenizes: the quote test is unchanged"
        for i in (18, 27)
    },
    _R + "xǁRuleǁholds__mutmut_9": "rel_tol=1e-9 is math.isclose's default",
    **{
        f"{_R}xǁ_LineParserǁheader__mutmut_{i}": "header() runs only when the line starts '['"
        for i in (2, 3, 5, 6, 9)
    },
    **{
        f"{_R}xǁ_LineParserǁsetting__mutmut_{i}": "setting() runs only when ':' follows the name"
        for i in (18, 19, 21, 22, 25)
    },
    **{
        f"{_R}xǁ_LineParserǁarguments__mutmut_{i}": "arguments() runs only when '(' is next"
        for i in (2, 3, 5, 6, 9)
    },
    **{
        f"{_R}xǁ_LineParserǁ_build__mutmut_{i}": "the token's kind is never shown or compared"
        for i in (38, 44, 45)
    },
    **{
        f"{_R}x__tokenize__mutmut_{i}": "the end token's text is never compared or shown"
        for i in (65, 72)
    },
    "rewards.handoff.x__acted_on_error__mutmut_19": "a report's recipient never plays in the "
    "reporter's turn (a turn is one role's, and no role reports to itself): > and >= agree",
    "rewards.handoff.x__refunded_after_the_report__mutmut_4": "the first handoff is the "
    "acting role's request (only it starts) and it plays no turn until the lookup answers: a "
    "refund after one is after the other",
    "rewards.handoff.x__refunded_after_the_report__mutmut_13": "an issue_refund that runs is "
    "the acting role's (the lookup lacks the tool), never in the lookup's turn: > and >= agree",
    "evals.audit.x_play__mutmut_22": "each episode is handed its own scenario: the env's "
    "split (the scenario list it loads) is never read by an audit",
    "evals.audit.x_players__mutmut_43": "the default only ever goes through bool(): "
    "bool(None) is False",
    "rewards.claims.xǁ_Textǁclaims__mutmut_7": "the RARE pre-check only saves passes: without "
    "it each of the five patterns is searched, and `hits` finds none where RARE found none",
    "rewards.claims.x__spelled_out__mutmut_1": "unspelled, `(?:i|we)x` stays one alternative: "
    "the same matches, tried more slowly",
    "rewards.freshness.x__answer__mutmut_2": "no answer read as 'XXXX' rather than '': neither "
    "holds a stale flag, a period, a figure or a date",
    "rewards.code_checks.x_final_answer__mutmut_2": "no answer read as 'XXXX' rather than '': "
    "neither holds a code block, a plan, a term or a version (relevance 0 either way)",
}
