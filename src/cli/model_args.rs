//! Options shared by every subcommand that runs a model.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use judgeq::model::{LoadOptions, Model, device, fetch};
use judgeq::progress::Progress;

/// Which model to run, and where.
#[derive(Args, Clone, Debug, Default)]
pub struct ModelArgs {
    /// GGUF file or Hugging Face model directory [default: SmolLM2-135M-Instruct, fetched on first use]
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Compute device: cpu, cuda or cuda:N (cuda needs a build with `--features cuda`)
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Weights and activations dtype: f32, bf16 or f16 [default: f32 on CPU, bf16 on GPU]
    #[arg(long)]
    pub dtype: Option<String>,
}

impl ModelArgs {
    /// Checks what can be checked before the model loads: the device and dtype parse, and
    /// `--model` exists.
    pub fn check(&self) -> anyhow::Result<()> {
        self.load_options()?;
        if let Some(path) = &self.model
            && !path.exists()
        {
            anyhow::bail!(
                "--model {} does not exist: give a GGUF file or a Hugging Face model folder",
                path.display()
            );
        }
        Ok(())
    }

    /// The model path, fetching the default model when none was given (and saying so when a
    /// corrupt cached copy had to be downloaded again).
    pub fn model_path(&self, progress: &dyn Progress) -> anyhow::Result<PathBuf> {
        match &self.model {
            Some(path) => Ok(path.clone()),
            None => {
                let fetched =
                    fetch::default_model(progress).context("could not get the default model")?;
                if let Some(note) = fetched.note() {
                    eprintln!("note: {note}");
                }
                Ok(fetched.path)
            }
        }
    }

    /// Device and dtype as load options.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let device = device::parse_device(&self.device)?;
        let dtype = match &self.dtype {
            Some(dtype) => device::parse_dtype(dtype)?,
            None => device::default_dtype(&device),
        };
        Ok(LoadOptions { device, dtype })
    }

    /// Fetches (when needed) and loads the model.
    pub fn load(&self, progress: &dyn Progress) -> anyhow::Result<Model> {
        let options = self.load_options()?;
        let path = self.model_path(progress)?;
        Model::load(&path, &options, progress)
            .with_context(|| format!("could not load the model {}", path.display()))
    }
}
