//! `clamator codegen [--docs … --out-*] | import | check`: no broker involved.

use std::process::ExitCode;

use crate::cli::{CodegenAction, CodegenArgs};

pub(crate) fn exec(args: &CodegenArgs) -> Result<ExitCode, String> {
    match &args.action {
        Some(CodegenAction::Import {
            python,
            python_path,
            python_bin,
            ts,
            node_modules,
            node_bin,
            out,
        }) => {
            let docs = match (python, ts) {
                (Some(python), _) => {
                    let how = clamator_codegen::import::PythonImport {
                        python: python_bin.clone(),
                        python_path: python_path.clone(),
                    };
                    clamator_codegen::import::python(python, &how)
                }
                (None, Some(ts)) => {
                    let how = clamator_codegen::import::TsImport {
                        node: node_bin.clone(),
                        node_modules: node_modules.clone(),
                    };
                    clamator_codegen::import::typescript(ts, &how)
                }
                (None, None) => return Err("give --python or --ts".into()),
            }
            .map_err(|e| e.to_string())?;
            for path in
                clamator_codegen::import::write_documents(&docs, out).map_err(|e| e.to_string())?
            {
                out!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(CodegenAction::Check { contract, against }) => {
            let ours = clamator_codegen::read_docs(contract).map_err(|e| e.to_string())?;
            let theirs = clamator_codegen::read_docs(against).map_err(|e| e.to_string())?;
            if ours.is_empty() {
                return Err(format!("no contract documents in {}", contract.display()));
            }
            let differences = clamator_codegen::compare(&ours, &theirs);
            if differences.is_empty() {
                out!(
                    "codegen check: {} contract(s) match {}",
                    ours.len(),
                    against.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            for d in &differences {
                out!("drift: {d}");
            }
            eprintln!(
                "{} difference(s) between {} and {}",
                differences.len(),
                contract.display(),
                against.display()
            );
            Ok(ExitCode::from(1))
        }
        None => generate(args),
    }
}

fn generate(args: &CodegenArgs) -> Result<ExitCode, String> {
    let docs = args.docs.as_ref().ok_or(
        "codegen needs --docs (or a subcommand: import, check); see clamator codegen --help",
    )?;
    let contracts = clamator_codegen::read_docs(docs).map_err(|e| e.to_string())?;
    if contracts.is_empty() {
        return Err(format!("no contract documents in {}", docs.display()));
    }
    let outputs = clamator_codegen::Outputs {
        python: args.out_py.clone(),
        typescript: args.out_ts.clone(),
        ts_contract_import: args.ts_contract_import.clone(),
        rust: args.out_rust.clone(),
        manifest: args.manifest.clone(),
    };
    let files = clamator_codegen::render(&contracts, &outputs);
    if args.check {
        let drift = clamator_codegen::check(&files);
        if drift.is_empty() {
            out!("codegen: {} file(s) up to date", files.len());
            return Ok(ExitCode::SUCCESS);
        }
        for d in &drift {
            eprintln!("drift: {d}");
        }
        return Ok(ExitCode::from(1));
    }
    clamator_codegen::write(&files).map_err(|e| e.to_string())?;
    for (path, _) in &files {
        out!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
