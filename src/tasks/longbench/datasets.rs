//! LongBench's English datasets: their prompt templates, split into context, question and
//! answer prefix, their generation lengths and their metrics.
//!
//! The template text is LongBench's own (`LongBench/config/dataset2prompt.json`, typos such as
//! "asconcisely" included), split where kvpress splits it
//! (`evaluation/benchmarks/longbench/create_huggingface_dataset.py`): the context part ends
//! before the question block, the answer prefix is the template's closing cue (`Answer:`,
//! `Summary:`, ...), and for trec, triviaqa and samsum, whose `input` already ends with that cue,
//! the cue is cut from the input. Generation lengths are `LongBench/config/dataset2maxlen.json`;
//! metrics are `LongBench/eval.py`'s `dataset2metric`.

/// How a dataset is scored (LongBench's `dataset2metric`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scoring {
    /// `qa_f1_score`.
    QaF1,
    /// `rouge_score`.
    RougeL,
    /// `classification_score` over the record's `all_classes`.
    Classification,
    /// `retrieval_score`.
    Retrieval,
    /// `count_score`.
    Count,
    /// `code_sim_score`.
    CodeSim,
}

/// One English LongBench dataset.
#[derive(Debug)]
pub(super) struct Dataset {
    /// LongBench's name (the file stem, without LongBench-E's `_e`).
    pub name: &'static str,
    /// The text before the question; `{context}` stands for the record's `context`.
    pub context: &'static str,
    /// The question; `{input}` stands for the record's `input`.
    pub question: &'static str,
    /// The end of `input` that is the answer prefix already (cut from it).
    pub input_suffix: &'static str,
    /// The text the answer starts after.
    pub answer_prefix: &'static str,
    /// LongBench's generation length.
    pub max_new_tokens: usize,
    /// The metric.
    pub scoring: Scoring,
    /// Whether only the prediction's first line is scored (`eval.py`).
    pub first_line: bool,
}

/// LongBench's Chinese datasets, which judgeq does not load.
pub(super) const CHINESE: [&str; 5] = [
    "multifieldqa_zh",
    "dureader",
    "vcsum",
    "lsht",
    "passage_retrieval_zh",
];

const PASSAGES: &str = "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the given passages. Only give me the answer and do not output any other words.\n\n";

/// The English datasets, in LongBench's order.
pub(super) const DATASETS: [Dataset; 16] = [
    Dataset {
        name: "narrativeqa",
        context: "You are given a story, which can be either a novel or a movie script, and a question. Answer the question asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\n",
        question: "Question: {input}\n\n",
        input_suffix: "",
        answer_prefix: "Answer:",
        max_new_tokens: 128,
        scoring: Scoring::QaF1,
        first_line: false,
    },
    Dataset {
        name: "qasper",
        context: "You are given a scientific article and a question. Answer the question as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the above article as concisely as you can, using a single phrase or sentence if possible. If the question cannot be answered based on the information in the article, write \"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.\n\n",
        question: "Question: {input}\n\n",
        input_suffix: "",
        answer_prefix: "Answer:",
        max_new_tokens: 128,
        scoring: Scoring::QaF1,
        first_line: false,
    },
    Dataset {
        name: "multifieldqa_en",
        context: "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, only give me the answer and do not output any other words.\n\n",
        question: "Question: {input}\n",
        input_suffix: "",
        answer_prefix: "Answer:",
        max_new_tokens: 64,
        scoring: Scoring::QaF1,
        first_line: false,
    },
    Dataset {
        name: "hotpotqa",
        context: PASSAGES,
        question: "Question: {input}\n",
        input_suffix: "",
        answer_prefix: "Answer:",
        max_new_tokens: 32,
        scoring: Scoring::QaF1,
        first_line: false,
    },
    Dataset {
        name: "2wikimqa",
        context: PASSAGES,
        question: "Question: {input}\n",
        input_suffix: "",
        answer_prefix: "Answer:",
        max_new_tokens: 32,
        scoring: Scoring::QaF1,
        first_line: false,
    },
    Dataset {
        name: "musique",
        context: PASSAGES,
        question: "Question: {input}\n",
        input_suffix: "",
        answer_prefix: "Answer:",
        max_new_tokens: 32,
        scoring: Scoring::QaF1,
        first_line: false,
    },
    Dataset {
        name: "gov_report",
        context: "You are given a report by a government agency. Write a one-page summary of the report.\n\nReport:\n{context}\n\n",
        question: "Now, write a one-page summary of the report.\n\n",
        input_suffix: "",
        answer_prefix: "Summary:",
        max_new_tokens: 512,
        scoring: Scoring::RougeL,
        first_line: false,
    },
    Dataset {
        name: "qmsum",
        context: "You are given a meeting transcript and a query containing a question or instruction. Answer the query in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above meeting transcript in one or more sentences.\n\n",
        question: "Query: {input}\n",
        input_suffix: "",
        answer_prefix: "Answer:",
        max_new_tokens: 512,
        scoring: Scoring::RougeL,
        first_line: false,
    },
    Dataset {
        name: "multi_news",
        context: "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\n",
        question: "Now, write a one-page summary of all the news.\n\n",
        input_suffix: "",
        answer_prefix: "Summary:",
        max_new_tokens: 512,
        scoring: Scoring::RougeL,
        first_line: false,
    },
    Dataset {
        name: "trec",
        context: "Please determine the type of the question below. Here are some examples of questions.\n\n{context}\n",
        question: "{input}",
        input_suffix: "Type:",
        answer_prefix: "Type:",
        max_new_tokens: 64,
        scoring: Scoring::Classification,
        first_line: true,
    },
    Dataset {
        name: "triviaqa",
        context: "Answer the question based on the given passage. Only give me the answer and do not output any other words. The following are some examples.\n\n{context}\n\n",
        question: "{input}",
        input_suffix: "Answer:",
        answer_prefix: "Answer:",
        max_new_tokens: 32,
        scoring: Scoring::QaF1,
        first_line: true,
    },
    Dataset {
        name: "samsum",
        context: "Summarize the dialogue into a few short sentences. The following are some examples.\n\n{context}\n\n",
        question: "{input}",
        input_suffix: "Summary:",
        answer_prefix: "Summary:",
        max_new_tokens: 128,
        scoring: Scoring::RougeL,
        first_line: true,
    },
    Dataset {
        name: "passage_count",
        context: "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. Please carefully read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\n",
        question: "Please enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\n",
        input_suffix: "",
        answer_prefix: "The final answer is: ",
        max_new_tokens: 32,
        scoring: Scoring::Count,
        first_line: false,
    },
    Dataset {
        name: "passage_retrieval_en",
        context: "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n",
        question: "{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\n",
        input_suffix: "",
        answer_prefix: "The answer is: ",
        max_new_tokens: 32,
        scoring: Scoring::Retrieval,
        first_line: false,
    },
    Dataset {
        name: "lcc",
        context: "Please complete the code given below. \n{context}",
        question: "{input}",
        input_suffix: "",
        answer_prefix: "Next line of code:\n",
        max_new_tokens: 64,
        scoring: Scoring::CodeSim,
        first_line: false,
    },
    Dataset {
        name: "repobench-p",
        context: "Please complete the code given below. \n{context}",
        question: "{input}",
        input_suffix: "",
        answer_prefix: "Next line of code:\n",
        max_new_tokens: 64,
        scoring: Scoring::CodeSim,
        first_line: false,
    },
];
