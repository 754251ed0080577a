//! The official metrics of the task families, each written from its reference code so that a
//! prediction scores here what it scores there: RULER's string matches (`ruler`), LongBench's
//! token F1, classification, retrieval and count scores (`longbench`), ROUGE-L (`rouge` package,
//! `longbench_rouge`) and code similarity (`fuzzywuzzy`/`difflib`, `code_sim`), L-Eval's exam
//! match (`leval`) and ROUGE mean (`rouge_score` package, `leval_rouge`), and LongEval's number
//! check (`longeval`). `python` holds the Python string semantics they share.
//!
//! Where the reference code raises (no reference, a reference without the expected shape, a
//! prediction ROUGE cannot split), the score is 0.

mod code_sim;
mod leval;
mod leval_rouge;
mod longbench;
mod longbench_rouge;
mod longeval;
pub(crate) mod python;
mod ruler;

use crate::tasks::Metric;

/// The score in `[0, 1]` of `prediction` (what the model wrote after the answer prefix)
/// against the reference `answers`, as `metric`'s official code computes it for one sample.
/// Every metric but RULER's `string_match_all` (the share of references found) and L-Eval's
/// ROUGE mean (best per ROUGE kind) takes the best score over the references; no references
/// score 0.
pub fn score(metric: &Metric, prediction: &str, answers: &[String]) -> f64 {
    let best = |metric: &dyn Fn(&str) -> f64| longbench::best_over(answers, metric);
    match metric {
        Metric::StringMatchAll => ruler::string_match_all(prediction, answers),
        Metric::StringMatchPart => ruler::string_match_part(prediction, answers),
        Metric::QaF1 => best(&|truth| longbench::qa_f1(prediction, truth)),
        Metric::RougeL => best(&|truth| longbench_rouge::rouge_l(prediction, truth)),
        Metric::Classification { classes } => {
            best(&|truth| longbench::classification(prediction, truth, classes))
        }
        Metric::Retrieval => best(&|truth| longbench::retrieval(prediction, truth)),
        Metric::Count => best(&|truth| longbench::count(prediction, truth)),
        Metric::CodeSim => best(&|truth| code_sim::code_sim(prediction, truth)),
        Metric::FirstLine { metric } => score(metric, longbench::first_line(prediction), answers),
        Metric::RougeGeometricMean => leval_rouge::rouge_geometric_mean(prediction, answers),
        Metric::Exam { format } => best(&|truth| leval::exam(*format, prediction, truth)),
        Metric::LastNumber => best(&|truth| longeval::last_number(prediction, truth)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::ExamFormat;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn no_reference_scores_zero_everywhere() {
        let metrics = [
            Metric::StringMatchAll,
            Metric::StringMatchPart,
            Metric::QaF1,
            Metric::RougeL,
            Metric::Classification {
                classes: strings(&["x"]),
            },
            Metric::Retrieval,
            Metric::Count,
            Metric::CodeSim,
            Metric::FirstLine {
                metric: Box::new(Metric::QaF1),
            },
            Metric::RougeGeometricMean,
            Metric::Exam {
                format: ExamFormat::FreeText,
            },
            Metric::LastNumber,
        ];
        for metric in &metrics {
            assert_eq!(score(metric, "x 1 Paragraph 1", &[]), 0.0, "{metric:?}");
        }
    }

    #[test]
    fn first_line_scores_only_the_first_line() {
        let first_line = Metric::FirstLine {
            metric: Box::new(Metric::QaF1),
        };
        // First line "Paris": F1 1 against "Paris".
        assert_eq!(
            score(&first_line, "\nParis\nor maybe Lyon", &strings(&["Paris"])),
            1.0
        );
        // First line "Lyon": 0, although "Paris" follows.
        assert_eq!(score(&first_line, "Lyon\nParis", &strings(&["Paris"])), 0.0);
        // Plain QaF1 reads both lines: [lyon, paris] vs [paris]: P = 1/2, R = 1, F1 = 2/3.
        let plain = score(&Metric::QaF1, "Lyon\nParis", &strings(&["Paris"]));
        assert!((plain - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_best_reference_wins() {
        // Count against "3" (numbers [3, 4]: 1/2) and "4" (1/2): best 1/2.
        assert_eq!(score(&Metric::Count, "3 or 4", &strings(&["3", "4"])), 0.5);
        // LongEval: the last number 4 is the second reference.
        assert_eq!(
            score(&Metric::LastNumber, "3 or 4", &strings(&["3", "4"])),
            1.0
        );
        // Exam (single choice): the second reference's letter is chosen.
        let exam = Metric::Exam {
            format: ExamFormat::SingleChoice,
        };
        assert_eq!(score(&exam, "C", &strings(&["(B) no", "(C) yes"])), 1.0);
    }
}
