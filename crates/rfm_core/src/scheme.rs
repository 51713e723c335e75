//! Built-in segment schemes: `standard` (R × FM, 11 segments), `rf10` (R × F, 10 segments)
//! and `codes` (the RFM code table of the NetSuite plan). Every scheme is defined on scores
//! 1..=5 and maps every one of the 125 (r, f, m) combinations to exactly one segment.

use crate::error::{ErrorKind, Result, RfmError};
use crate::rules::{self, Population, RuleScheme, Values};
use crate::score::check_score;
use std::sync::Arc;

/// Scores every scheme is defined on.
pub const SCHEME_BUCKETS: i32 = 5;

/// Which scores place a customer in a cell of the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axes {
    /// Recency × combined frequency–monetary score.
    RecencyFm,
    /// Recency × frequency (monetary is not used).
    RecencyFrequency,
    /// The three-digit RFM code.
    Code,
}

/// A named segment with its meaning and what to do with its customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub name: &'static str,
    pub description: &'static str,
    pub actions: &'static [&'static str],
}

/// A built-in scheme.
#[derive(Debug)]
pub struct Scheme {
    pub name: &'static str,
    pub description: &'static str,
    pub axes: Axes,
    /// Segments in display order (best customers first).
    pub segments: &'static [Segment],
    classify: fn(i32, i32, i32) -> &'static str,
}

const fn seg(
    name: &'static str,
    description: &'static str,
    actions: &'static [&'static str],
) -> Segment {
    Segment {
        name,
        description,
        actions,
    }
}

const CHAMPIONS: Segment = seg(
    "Champions",
    "Bought recently, buy often and spend the most.",
    &[
        "reward them",
        "early access to new products",
        "ask for reviews and referrals",
    ],
);
const LOYAL: Segment = seg(
    "Loyal",
    "Buy regularly and spend well; respond to promotions.",
    &[
        "loyalty programme",
        "upsell higher-value products",
        "ask for reviews",
    ],
);
const POTENTIAL_LOYALISTS: Segment = seg(
    "Potential Loyalists",
    "Recent customers with average frequency who spent a good amount.",
    &[
        "membership or loyalty offer",
        "personalised recommendations",
    ],
);
const NEW_CUSTOMERS: Segment = seg(
    "New Customers",
    "Bought very recently, but not often yet.",
    &[
        "onboarding series",
        "early support",
        "build the relationship",
    ],
);
const PROMISING: Segment = seg(
    "Promising",
    "Recent shoppers who have not spent much yet.",
    &[
        "create brand awareness",
        "free trials",
        "second-purchase offer",
    ],
);
const NEED_ATTENTION: Segment = seg(
    "Need Attention",
    "Above-average recency, frequency and monetary values, but slipping.",
    &[
        "limited-time offers",
        "recommendations based on past purchases",
    ],
);
const ABOUT_TO_SLEEP: Segment = seg(
    "About to Sleep",
    "Below-average recency and frequency; will be lost without reactivation.",
    &[
        "share popular products",
        "discounts on renewal",
        "reconnect",
    ],
);
const AT_RISK: Segment = seg(
    "At Risk",
    "Used to buy often and spend well, but not for a long time.",
    &[
        "win-back offer",
        "personalised e-mails",
        "helpful resources",
    ],
);
const CANT_LOSE_THEM: Segment = seg(
    "Can't Lose Them",
    "Made the biggest and most frequent purchases, but have not returned for long.",
    &[
        "win them back with new products",
        "talk to them",
        "do not lose them to competitors",
    ],
);
const HIBERNATING: Segment = seg(
    "Hibernating",
    "Last purchase long ago, few orders, low spend.",
    &[
        "offer other relevant products",
        "special discounts",
        "recreate brand value",
    ],
);
const LOST: Segment = seg(
    "Lost",
    "Lowest recency, frequency and monetary scores.",
    &[
        "revive interest with an outreach campaign",
        "otherwise ignore",
    ],
);

fn standard(r: i32, f: i32, m: i32) -> &'static str {
    // fm_score cannot fail for scores already checked to be 1..=5
    let fm = (f + m + 1) / 2;
    const GRID: [[&str; 5]; 5] = [
        // R1: FM1..FM5
        [
            "Lost",
            "Hibernating",
            "At Risk",
            "Can't Lose Them",
            "Can't Lose Them",
        ],
        [
            "About to Sleep",
            "Need Attention",
            "Need Attention",
            "At Risk",
            "At Risk",
        ],
        [
            "Promising",
            "Need Attention",
            "Potential Loyalists",
            "Loyal",
            "Loyal",
        ],
        [
            "Promising",
            "Potential Loyalists",
            "Potential Loyalists",
            "Loyal",
            "Champions",
        ],
        [
            "New Customers",
            "Potential Loyalists",
            "Loyal",
            "Champions",
            "Champions",
        ],
    ];
    GRID[(r - 1) as usize][(fm - 1) as usize]
}

fn rf10(r: i32, f: i32, _m: i32) -> &'static str {
    match (r, f) {
        (1..=2, 1..=2) => "Hibernating",
        (1..=2, 3..=4) => "At Risk",
        (1..=2, _) => "Can't Lose Them",
        (3, 1..=2) => "About to Sleep",
        (3, 3) => "Need Attention",
        (3..=4, 4..=5) => "Loyal",
        (4, 1) => "Promising",
        (5, 1) => "New Customers",
        (4..=5, 2..=3) => "Potential Loyalists",
        _ => "Champions", // (5, 4..=5)
    }
}

fn codes(r: i32, f: i32, m: i32) -> &'static str {
    let high_fm = f >= 4 && m >= 4;
    match r {
        5 if high_fm => "VIP Champions",
        4 if high_fm => "Loyal Customers",
        3 if high_fm => "Potential Loyalists",
        2 if high_fm => "At-Risk Loyal",
        1 if high_fm => "At-Risk VIP",
        5 if (2..=3).contains(&f) && m >= 4 => "Recent High-Spenders",
        5 if f == 1 => "New Customers",
        2 if f == 1 && m <= 4 => "Lapsed Customers",
        1 if f <= 2 && m <= 2 => "Churned",
        _ => "Other",
    }
}

/// The built-in schemes, in the order they are listed.
pub static BUILTIN: [Scheme; 3] = [
    Scheme {
        name: "standard",
        description:
            "Recency × combined frequency-monetary score (fm = ceil((f + m) / 2)), 11 segments.",
        axes: Axes::RecencyFm,
        segments: &[
            CHAMPIONS,
            LOYAL,
            POTENTIAL_LOYALISTS,
            NEW_CUSTOMERS,
            PROMISING,
            NEED_ATTENTION,
            ABOUT_TO_SLEEP,
            AT_RISK,
            CANT_LOSE_THEM,
            HIBERNATING,
            LOST,
        ],
        classify: standard,
    },
    Scheme {
        name: "rf10",
        description: "Recency × frequency, 10 segments; the monetary score is not used.",
        axes: Axes::RecencyFrequency,
        segments: &[
            CHAMPIONS,
            LOYAL,
            POTENTIAL_LOYALISTS,
            NEW_CUSTOMERS,
            PROMISING,
            NEED_ATTENTION,
            ABOUT_TO_SLEEP,
            AT_RISK,
            CANT_LOSE_THEM,
            HIBERNATING,
        ],
        classify: rf10,
    },
    Scheme {
        name: "codes",
        description: "Three-digit RFM code table; codes not listed are Other.",
        axes: Axes::Code,
        segments: &[
            seg(
                "VIP Champions",
                "Codes 555, 554, 545, 544: recent, frequent, high spenders.",
                &["VIP treatment", "early access", "personal account manager"],
            ),
            seg(
                "Loyal Customers",
                "Codes 455, 454, 445, 444: frequent high spenders, slightly less recent.",
                &["loyalty rewards", "upsell", "ask for referrals"],
            ),
            seg(
                "Potential Loyalists",
                "Codes 355, 354, 345, 344: strong buyers whose recency is average.",
                &["membership offer", "personalised recommendations"],
            ),
            seg(
                "Recent High-Spenders",
                "Codes 535, 534, 525, 524: recent, big baskets, few orders.",
                &["cross-sell", "encourage a repeat purchase"],
            ),
            seg(
                "New Customers",
                "Codes 511-515: first order very recently.",
                &["onboarding series", "welcome offer"],
            ),
            seg(
                "At-Risk Loyal",
                "Codes 255, 254, 245, 244: were loyal high spenders, now slipping away.",
                &["win-back offer", "personal outreach"],
            ),
            seg(
                "At-Risk VIP",
                "Codes 155, 154, 145, 144: best customers who have not bought for long.",
                &["urgent win-back call", "exclusive offer"],
            ),
            seg(
                "Lapsed Customers",
                "Codes 211-214: one order, a while ago.",
                &["reactivation campaign", "survey why they left"],
            ),
            seg(
                "Churned",
                "Codes 111, 112, 121, 122: few small orders long ago.",
                &["low-cost reactivation", "otherwise ignore"],
            ),
            seg(
                "Other",
                "Every code not listed above.",
                &["general newsletter", "monitor for movement"],
            ),
        ],
        classify: codes,
    },
];

/// The names of the built-in schemes, comma separated (for hints).
pub fn builtin_names() -> String {
    BUILTIN
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Looks a built-in scheme up by name (42704 when unknown).
pub fn builtin(name: &str) -> Result<&'static Scheme> {
    BUILTIN.iter().find(|s| s.name == name).ok_or_else(|| {
        RfmError::new(
            ErrorKind::UndefinedObject,
            format!("segment scheme {} does not exist", crate::shown(name)),
        )
        .with_hint(format!("Built-in schemes are: {}.", builtin_names()))
    })
}

/// What an analysis segments with: a built-in grid scheme or a rule scheme (the built-in
/// `lifecycle` or one a user saved, SPEC §9).
#[derive(Debug, Clone, PartialEq)]
pub enum Segmenter {
    Grid(&'static Scheme),
    Rules {
        name: String,
        rules: Arc<RuleScheme>,
        /// Built in (stored by name in states and values) or saved by a user (stored with
        /// its document, so that a state or value never depends on the catalog).
        builtin: bool,
    },
}

/// The most segments a scheme may have (a customer's segment is stored in one byte).
pub const MAX_SEGMENTS: usize = 250;

impl Segmenter {
    /// A built-in scheme by name: a grid one or `lifecycle` (42704 when unknown).
    pub fn builtin(name: &str) -> Result<Segmenter> {
        if let Some(r) = rules::builtin(name) {
            return Ok(Segmenter::Rules {
                name: name.to_string(),
                rules: Arc::new(r.clone()),
                builtin: true,
            });
        }
        builtin(name).map(Segmenter::Grid)
    }

    /// A user's rule scheme.
    pub fn user(name: &str, rules: RuleScheme) -> Result<Segmenter> {
        if rules.segments().len() > MAX_SEGMENTS {
            return Err(RfmError::invalid(format!(
                "scheme \"{name}\" has {} segments; at most {MAX_SEGMENTS} are allowed",
                rules.segments().len()
            )));
        }
        Ok(Segmenter::Rules {
            name: name.to_string(),
            rules: Arc::new(rules),
            builtin: false,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Segmenter::Grid(s) => s.name,
            Segmenter::Rules { name, .. } => name,
        }
    }

    /// Segment names in display order.
    pub fn segment_names(&self) -> Vec<&str> {
        match self {
            Segmenter::Grid(s) => s.segments.iter().map(|x| x.name).collect(),
            Segmenter::Rules { rules, .. } => {
                rules.segments().iter().map(|x| x.name.as_str()).collect()
            }
        }
    }

    /// The segment index of every (r, f, m), when the scheme is a function of the scores.
    pub fn score_table(&self) -> Option<[u8; 125]> {
        match self {
            Segmenter::Grid(s) => Some(s.table()),
            Segmenter::Rules { rules, .. } => rules.score_table(),
        }
    }

    /// Whether the analysis must compute the full customer metrics of SPEC §9.
    pub fn needs_metrics(&self) -> bool {
        match self {
            Segmenter::Grid(_) => false,
            Segmenter::Rules { rules, .. } => rules.needs_metrics(),
        }
    }

    /// Whether classifying a customer reads `metric` (a grid scheme reads only the scores).
    pub fn reads(&self, metric: crate::rules::Metric) -> bool {
        match self {
            Segmenter::Grid(_) => metric.is_score(),
            Segmenter::Rules { rules, .. } => rules.reads(metric),
        }
    }

    /// Whether any rule reads `p_alive` or `clv` (SPEC §12).
    pub fn needs_clv(&self) -> bool {
        match self {
            Segmenter::Grid(_) => false,
            Segmenter::Rules { rules, .. } => rules.needs_clv(),
        }
    }

    /// Who the analysis outputs: active customers, or every customer with a purchase.
    pub fn population(&self) -> Population {
        match self {
            Segmenter::Grid(_) => Population::Active,
            Segmenter::Rules { rules, .. } => rules.population(),
        }
    }

    /// Whether any rule reads a score (then the scheme needs 5 buckets).
    pub fn uses_scores(&self) -> bool {
        fn walk(v: &serde_json::Value) -> bool {
            match v {
                serde_json::Value::Object(o) => o.iter().any(|(k, v)| {
                    matches!(k.as_str(), "r" | "f" | "m" | "fm" | "rfm_code") || walk(v)
                }),
                serde_json::Value::Array(a) => a.iter().any(walk),
                _ => false,
            }
        }
        match self {
            Segmenter::Grid(_) => true,
            Segmenter::Rules { rules, .. } => rules
                .to_json()
                .get("segments")
                .and_then(|s| s.as_array())
                .is_some_and(|segs| segs.iter().any(|s| s.get("when").is_some_and(walk))),
        }
    }

    /// The segment index of a customer: `scores` (r, f, m) when active; `values` is only
    /// read by rule schemes that need more than the scores.
    pub fn classify(
        &self,
        table: Option<&[u8; 125]>,
        scores: Option<[u8; 3]>,
        values: &Values,
    ) -> u8 {
        if let (Some(t), Some(s)) = (table, scores) {
            return t[code_index(s[0] as i32, s[1] as i32, s[2] as i32)];
        }
        match self {
            Segmenter::Grid(_) => 0, // grid schemes are only used with a table and scores
            Segmenter::Rules { rules, .. } => rules.classify(values) as u8,
        }
    }
}

/// `rfm.segment` with any scheme: scores checked (22003 outside 1..=5), then the segment.
/// A rule scheme must be a function of the scores (22023 otherwise).
pub fn segment_with(s: &Segmenter, r: i32, f: i32, m: i32) -> Result<String> {
    check_score("r", r, SCHEME_BUCKETS)?;
    check_score("f", f, SCHEME_BUCKETS)?;
    check_score("m", m, SCHEME_BUCKETS)?;
    let names = s.segment_names();
    match s.score_table() {
        Some(t) => Ok(names[t[code_index(r, f, m)] as usize].to_string()),
        None => Err(RfmError::invalid(format!(
            "scheme \"{}\" reads more than the scores r, f and m",
            s.name()
        ))
        .with_hint("Use it as the \"scheme\" option of rfm.analyze, which computes the customer metrics it needs.")),
    }
}

impl PartialEq for Scheme {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Scheme {
    /// The segment of scores already known to be 1..=5.
    pub fn classify(&self, r: i32, f: i32, m: i32) -> &'static str {
        (self.classify)(r, f, m)
    }

    /// `rfm.segment`: checks the scores (22003 outside 1..=5), then classifies.
    pub fn segment(&self, r: i32, f: i32, m: i32) -> Result<&'static str> {
        check_score("r", r, SCHEME_BUCKETS)?;
        check_score("f", f, SCHEME_BUCKETS)?;
        check_score("m", m, SCHEME_BUCKETS)?;
        Ok(self.classify(r, f, m))
    }

    /// The position of a segment name in display order.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.segments.iter().position(|s| s.name == name)
    }

    /// For each of the 125 (r, f, m) combinations, in `code_index` order, the index of its
    /// segment: a table the analysis engine reads instead of classifying each customer.
    pub fn table(&self) -> [u8; 125] {
        let mut table = [0u8; 125];
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let name = self.classify(r, f, m);
                    let idx = self.index_of(name).unwrap_or(self.segments.len() - 1);
                    table[code_index(r, f, m)] = idx as u8;
                }
            }
        }
        table
    }

    /// The cells of a segment, as shown in the `rfm.schemes` view: `R5 FM4` (standard),
    /// `R5 F4` (rf10) or the code `554` (codes), best cells first.
    pub fn cells(&self, segment: &str) -> Vec<String> {
        let mut out = Vec::new();
        match self.axes {
            Axes::RecencyFm => {
                for r in (1..=5).rev() {
                    for fm in (1..=5).rev() {
                        // any (f, m) with ceil((f+m)/2) = fm: take f = m = fm
                        if self.classify(r, fm, fm) == segment {
                            out.push(format!("R{r} FM{fm}"));
                        }
                    }
                }
            }
            Axes::RecencyFrequency => {
                for r in (1..=5).rev() {
                    for f in (1..=5).rev() {
                        if self.classify(r, f, 1) == segment {
                            out.push(format!("R{r} F{f}"));
                        }
                    }
                }
            }
            Axes::Code => {
                for r in (1..=5).rev() {
                    for f in (1..=5).rev() {
                        for m in (1..=5).rev() {
                            if self.classify(r, f, m) == segment {
                                out.push(format!("{r}{f}{m}"));
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// Index of (r, f, m), each 1..=5, in a 125-entry table.
pub fn code_index(r: i32, f: i32, m: i32) -> usize {
    ((r - 1) * 25 + (f - 1) * 5 + (m - 1)) as usize
}

/// `rfm.segment(r, f, m, scheme)`.
pub fn segment(r: i32, f: i32, m: i32, scheme: &str) -> Result<&'static str> {
    builtin(scheme)?.segment(r, f, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_grid_every_cell() {
        // rows R5..R1, columns FM1..FM5, as in the specification
        let expected = [
            [
                "New Customers",
                "Potential Loyalists",
                "Loyal",
                "Champions",
                "Champions",
            ],
            [
                "Promising",
                "Potential Loyalists",
                "Potential Loyalists",
                "Loyal",
                "Champions",
            ],
            [
                "Promising",
                "Need Attention",
                "Potential Loyalists",
                "Loyal",
                "Loyal",
            ],
            [
                "About to Sleep",
                "Need Attention",
                "Need Attention",
                "At Risk",
                "At Risk",
            ],
            [
                "Lost",
                "Hibernating",
                "At Risk",
                "Can't Lose Them",
                "Can't Lose Them",
            ],
        ];
        for (row, names) in expected.iter().enumerate() {
            let r = 5 - row as i32;
            for (col, name) in names.iter().enumerate() {
                let fm = col as i32 + 1;
                for f in 1..=5 {
                    for m in 1..=5 {
                        if (f + m + 1) / 2 == fm {
                            assert_eq!(segment(r, f, m, "standard"), Ok(*name), "R{r} F{f} M{m}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rf10_every_cell() {
        let expected = [
            // R1: F1..F5
            [
                "Hibernating",
                "Hibernating",
                "At Risk",
                "At Risk",
                "Can't Lose Them",
            ],
            [
                "Hibernating",
                "Hibernating",
                "At Risk",
                "At Risk",
                "Can't Lose Them",
            ],
            [
                "About to Sleep",
                "About to Sleep",
                "Need Attention",
                "Loyal",
                "Loyal",
            ],
            [
                "Promising",
                "Potential Loyalists",
                "Potential Loyalists",
                "Loyal",
                "Loyal",
            ],
            [
                "New Customers",
                "Potential Loyalists",
                "Potential Loyalists",
                "Champions",
                "Champions",
            ],
        ];
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    assert_eq!(
                        segment(r, f, m, "rf10"),
                        Ok(expected[(r - 1) as usize][(f - 1) as usize]),
                        "R{r} F{f} M{m}"
                    );
                }
            }
        }
    }

    #[test]
    fn codes_every_cell() {
        let listed: &[(&str, &[&str])] = &[
            ("VIP Champions", &["555", "554", "545", "544"]),
            ("Loyal Customers", &["455", "454", "445", "444"]),
            ("Potential Loyalists", &["355", "354", "345", "344"]),
            ("Recent High-Spenders", &["535", "534", "525", "524"]),
            ("New Customers", &["511", "512", "513", "514", "515"]),
            ("At-Risk Loyal", &["255", "254", "245", "244"]),
            ("At-Risk VIP", &["155", "154", "145", "144"]),
            ("Lapsed Customers", &["211", "212", "213", "214"]),
            ("Churned", &["111", "112", "121", "122"]),
        ];
        let mut seen = 0;
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let code = format!("{r}{f}{m}");
                    let want = listed
                        .iter()
                        .find(|(_, codes)| codes.contains(&code.as_str()))
                        .map(|(name, _)| *name)
                        .unwrap_or("Other");
                    if want != "Other" {
                        seen += 1;
                    }
                    assert_eq!(segment(r, f, m, "codes"), Ok(want), "code {code}");
                }
            }
        }
        assert_eq!(seen, 37);
    }

    #[test]
    fn every_segment_has_cells_and_every_cell_a_listed_segment() {
        for scheme in &BUILTIN {
            let table = scheme.table();
            for (i, s) in scheme.segments.iter().enumerate() {
                assert!(
                    !scheme.cells(s.name).is_empty(),
                    "{} {}",
                    scheme.name,
                    s.name
                );
                assert!(table.contains(&(i as u8)), "{} {}", scheme.name, s.name);
                assert!(!s.actions.is_empty());
            }
            for r in 1..=5 {
                for f in 1..=5 {
                    for m in 1..=5 {
                        let name = scheme.classify(r, f, m);
                        assert_eq!(
                            scheme.index_of(name),
                            Some(table[code_index(r, f, m)] as usize)
                        );
                    }
                }
            }
        }
        assert_eq!(
            builtin("standard").unwrap().cells("Champions"),
            ["R5 FM5", "R5 FM4", "R4 FM5"]
        );
    }

    #[test]
    fn bad_scores_and_schemes() {
        let e = segment(6, 1, 1, "standard").unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22003");
        assert_eq!(e.message, "r score must be between 1 and 5, got 6");
        let e = segment(1, 0, 1, "rf10").unwrap_err();
        assert_eq!(e.message, "f score must be between 1 and 5, got 0");
        let e = segment(1, 1, 1, "nope").unwrap_err();
        assert_eq!(e.kind.sqlstate(), "42704");
        assert_eq!(e.message, "segment scheme \"nope\" does not exist");
        assert_eq!(
            e.hint.as_deref(),
            Some("Built-in schemes are: standard, rf10, codes.")
        );
    }
}
