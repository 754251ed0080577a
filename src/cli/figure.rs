//! `judgeq figure`: the explorer's "Export figure…" from a script, out of an export folder.
//!
//! The figure is built by the same export-room function as the explorer's, so the same
//! session and settings give the same SVG, PNG and sidecar bytes.

use std::ops::Range;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use judgeq::attention::{HeadView, KeepMask, Pick, QuerySource, Reduce, kept_share};
use judgeq::export::{
    Colormap, ColourSettings, ExportFolder, FigurePaths, Overwrite, PRINT_DPI, PanelInput,
    ScaleMode, Selector, SessionFigureOptions, read_session_data, session_figure_spec,
    view_matrices, write_figure,
};
use judgeq::policy::{PolicyBank, PolicyId, PolicySettings, ScoreInputs};

use super::checks;

/// The explorer's budget before the user moves the slider, for exports without one.
const DEFAULT_BUDGET: usize = 256;

/// Arguments of `judgeq figure`.
#[derive(Args, Debug)]
pub struct FigureArgs {
    /// Export folder written by `judgeq inspect`, `judgeq evict` or the explorer's "Export data…"
    #[arg(value_name = "EXPORT_DIR")]
    pub export: PathBuf,
    /// Layer shown: an index, or mean or max over every layer
    #[arg(long, default_value = "0")]
    pub layer: Selector,
    /// Query head shown: an index, or mean or max over every head
    #[arg(long, default_value = "mean")]
    pub head: Selector,
    /// Budget of the kept strips: KV entries per layer and head [default: the export's budget
    /// when it has exactly one, else 256 as in the explorer]
    #[arg(long)]
    pub budget: Option<usize>,
    /// Kept-strip policy of the window, soft-token and decoded panels, comma-separated; one
    /// name stands for all three. Strips come from the export's keep masks, or are selected
    /// with the export's policy settings when it has none at that budget
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = [PolicyId::SNAPKV, PolicyId::JUDGEQ, PolicyId::ORACLE]
    )]
    pub policies: Vec<PolicyId>,
    /// Colormap: viridis, magma, inferno or greys
    #[arg(long, default_value_t = Colormap::Viridis)]
    pub colormap: Colormap,
    /// Colour scale: log, linear or per-row
    #[arg(long, default_value_t = ScaleMode::Log)]
    pub scale: ScaleMode,
    /// First keys (attention sinks) left out of the colour range; they saturate
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub skip_sinks: usize,
    /// Decades the log scale shows
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub decades: u32,
    /// Key range shown, START..END (END excluded) [default: the whole prompt]
    #[arg(long, value_parser = parse_key_range, value_name = "START..END")]
    pub keys: Option<Range<usize>>,
    /// Figure file: FILE.svg, FILE.png (300 dpi) and the FILE.json sidecar are written
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace files that already exist
    #[arg(long)]
    pub force: bool,
}

/// Parses `START..END`.
fn parse_key_range(text: &str) -> Result<Range<usize>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a key range START..END (e.g. 0..512)"))?;
    let number = |part: &str| {
        part.trim()
            .parse::<usize>()
            .map_err(|_| format!("{part:?} in {text:?} is not a key position"))
    };
    let range = number(start)?..number(end)?;
    if range.is_empty() {
        return Err(format!("the key range {text:?} is empty"));
    }
    Ok(range)
}

/// Writes the figure of the export in `args.export`.
pub fn run(args: &FigureArgs) -> anyhow::Result<()> {
    super::signals::install(None)?;
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    check_out(args)?;
    if args.decades == 0 {
        anyhow::bail!("--decades 0: the log scale shows at least one decade");
    }
    let export = read_session_data(&args.export)?;
    let session = &export.session;
    let info = &session.model;
    let view = head_view(args.layer, args.head, info.layers, info.query_heads)?;
    let policy = policy_settings(&export)?;
    let n_prompt = session.prompt_len();
    let options = SessionFigureOptions {
        view,
        colour: ColourSettings {
            mode: args.scale,
            skip_sinks: args.skip_sinks,
            decades: args.decades,
            colormap: args.colormap,
        },
        budget: budget(args.budget, &export)?,
        keys: args.keys.clone().unwrap_or(0..n_prompt),
        strip_policies: strip_policies(&args.policies)?,
        policy,
    };
    if options.keys.end > n_prompt {
        anyhow::bail!(
            "--keys {}..{} reaches past the prompt's {n_prompt} keys",
            options.keys.start,
            options.keys.end
        );
    }

    let masks = strip_masks(&export, &options)?;
    let shares = masks
        .each_ref()
        .map(|mask| mask.as_ref().map(|m| kept_share(m, view, info.query_heads)));
    let matrices = view_matrices(session, view);
    let mut panels: [PanelInput<'_>; QuerySource::COUNT] = Default::default();
    for ((panel, matrix), share) in panels.iter_mut().zip(&matrices).zip(&shares) {
        panel.matrix = matrix.as_ref();
        panel.kept = share.as_deref();
    }
    let spec = session_figure_spec(session, panels, &options)?;

    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("could not create {}", parent.display()))?;
    }
    let paths = write_figure(&args.out, &spec, PRINT_DPI, overwrite)
        .map_err(|e| checks::write_error(e, args.force))?;
    println!(
        "wrote {}, {} and {}",
        paths.svg.display(),
        paths.png.display(),
        paths.sidecar.display()
    );
    Ok(())
}

/// The three figure files, before any drawing: none of them a folder, their folder writable
/// (or creatable), and without `--force` none of them there already.
fn check_out(args: &FigureArgs) -> anyhow::Result<()> {
    checks::output_file(&args.out, "--out", true)?;
    checks::clean_temporaries(&checks::folder(&args.out))?;
    let paths = FigurePaths::for_path(&args.out)?;
    for path in [&paths.svg, &paths.png, &paths.sidecar] {
        checks::output_file(path, "--out", true)?;
    }
    let existing: Vec<String> = [&paths.svg, &paths.png, &paths.sidecar]
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !args.force && !existing.is_empty() {
        anyhow::bail!(
            "{} already exist{}; nothing was written (pass --force to replace them)",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" }
        );
    }
    Ok(())
}

/// The view of `--layer` and `--head`: indices within the model, and at most one aggregate.
fn head_view(
    layer: Selector,
    head: Selector,
    layers: usize,
    heads: usize,
) -> anyhow::Result<HeadView> {
    let pick = |selector: Selector, count: usize, what: &str| match selector {
        Selector::Index(i) if i >= count => Err(anyhow::anyhow!(
            "--{what} {i} does not exist: the model has {count} {what}s (0 to {})",
            count.saturating_sub(1)
        )),
        Selector::Index(i) => Ok(Pick::One(i)),
        Selector::Mean | Selector::Max => Ok(Pick::All),
    };
    let reduce = |selector: Selector| match selector {
        Selector::Max => Some(Reduce::Max),
        Selector::Mean => Some(Reduce::Mean),
        Selector::Index(_) => None,
    };
    let reduce = match (reduce(layer), reduce(head)) {
        (Some(a), Some(b)) if a != b => anyhow::bail!(
            "--layer {layer} and --head {head} ask for two aggregations; the panels reduce layers \
             and heads the same way (both mean or both max)"
        ),
        (Some(r), _) | (None, Some(r)) => r,
        (None, None) => Reduce::Mean,
    };
    Ok(HeadView {
        layer: pick(layer, layers, "layer")?,
        head: pick(head, heads, "head")?,
        reduce,
    })
}

/// The policy settings the export recorded, or the defaults when it recorded none.
fn policy_settings(export: &ExportFolder) -> anyhow::Result<PolicySettings> {
    let Some(eviction) = export.eviction() else {
        return Ok(PolicySettings::default());
    };
    let settings: PolicySettings =
        serde_json::from_value(eviction.settings.clone()).with_context(|| {
            format!(
                "the policy settings in {} cannot be read",
                export.dir.join("manifest.json").display()
            )
        })?;
    settings.validate()?;
    Ok(settings)
}

/// `--budget`, or the export's only budget, or the explorer's default.
fn budget(asked: Option<usize>, export: &ExportFolder) -> anyhow::Result<usize> {
    let recorded = export.eviction().map_or(&[][..], |e| e.budgets.as_slice());
    match (asked, recorded) {
        (Some(0), _) => anyhow::bail!(
            "a budget of 0 keeps nothing: budgets are KV entries per layer and head, at least 1"
        ),
        (Some(budget), _) => Ok(budget),
        (None, []) => Ok(DEFAULT_BUDGET),
        (None, [only]) => Ok(*only),
        (None, several) => anyhow::bail!(
            "{} has keep masks at budgets {}; choose one with --budget",
            export.dir.display(),
            several
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One strip policy per panel from `--policies` (one name for all, three, four with the
/// lookahead panel's, or five with the KVzip repeat panel's; panels not named show Lookahead
/// Q-Cache's and KVzip's).
fn strip_policies(policies: &[PolicyId]) -> anyhow::Result<[PolicyId; QuerySource::COUNT]> {
    match policies {
        [one] => Ok([*one; QuerySource::COUNT]),
        [window, soft, decoded] => Ok([
            *window,
            *soft,
            *decoded,
            PolicyId::LOOKAHEAD,
            PolicyId::KVZIP,
        ]),
        [window, soft, decoded, lookahead] => {
            Ok([*window, *soft, *decoded, *lookahead, PolicyId::KVZIP])
        }
        [window, soft, decoded, lookahead, repeat] => {
            Ok([*window, *soft, *decoded, *lookahead, *repeat])
        }
        other => anyhow::bail!(
            "--policies takes one policy for every panel or three (window, soft tokens, decoded), \
             or four with the lookahead drafts' panel, or five with the KVzip repeat panel, not {}",
            other.len()
        ),
    }
}

/// Each panel's keep mask at the figure's budget: the export's own, or selected now with its
/// policy settings (as the explorer does). A policy that cannot select (Judge Q without soft
/// tokens) leaves its panel without a strip.
fn strip_masks(
    export: &ExportFolder,
    options: &SessionFigureOptions,
) -> anyhow::Result<[Option<KeepMask>; QuerySource::COUNT]> {
    let budget = options.budget_for(export.session.prompt_len());
    let inputs = ScoreInputs::from_session(&export.session);
    let absent = |p: PolicyId| -> Vec<&'static str> {
        p.needs(&options.policy)
            .into_iter()
            .filter(|&input| !inputs.has(input))
            .map(|input| input.describe())
            .collect()
    };
    let missing: Vec<PolicyId> = PolicyId::all()
        .into_iter()
        .filter(|p| {
            options.strip_policies.contains(p) && export.keep(p.id(), budget.asked()).is_none()
        })
        .filter(|&p| absent(p).is_empty())
        .collect();
    let bank = if missing.is_empty() {
        None
    } else {
        Some(PolicyBank::new(&inputs, &options.policy, &missing)?)
    };
    let mut masks: [Option<KeepMask>; QuerySource::COUNT] = Default::default();
    for ((slot, policy), source) in masks
        .iter_mut()
        .zip(options.strip_policies)
        .zip(QuerySource::ALL)
    {
        let panel = source.file_stem();
        let lacking = absent(policy);
        if !lacking.is_empty() {
            eprintln!(
                "{panel} panel: no {} strip: the session has no {}",
                policy.label(),
                lacking.join(" or ")
            );
            continue;
        }
        if let Some(keep) = export.keep(policy.id(), budget.asked()) {
            eprintln!(
                "{panel} panel: {} at budget {budget} from keep_{}_{budget}.npy",
                policy.label(),
                policy.id()
            );
            *slot = Some(keep.mask.clone());
            continue;
        }
        if let Some(bank) = &bank {
            match bank.select(policy, budget) {
                Ok(selection) => {
                    eprintln!(
                        "{panel} panel: {} at budget {budget}, selected with the export's policy settings",
                        policy.label()
                    );
                    *slot = Some(selection.mask);
                }
                Err(e) => eprintln!("{panel} panel: no {} strip: {e}", policy.label()),
            }
        }
    }
    Ok(masks)
}
