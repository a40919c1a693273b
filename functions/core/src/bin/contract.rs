//! Writes `statemachine/contract.json` from the code (see `backup_core::contract`).

fn main() -> std::io::Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachine/contract.json");
    std::fs::write(&path, backup_core::contract::render())?;
    println!("wrote {}", path.display());
    Ok(())
}
