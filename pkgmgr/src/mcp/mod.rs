//! MCP servers for every AI agent in the sandbox.
//!
//! An MCP pack installs like any pack; enabling it records the server once, fully resolved, in
//! the canonical `~/.config/aibox/mcp.json` (`{"mcpServers": {...}}`) and renders it into each
//! agent's own config file in that agent's format. aibox edits only the entries it wrote, and
//! records what it wrote (a hash per file and entry) in its own state, never inside the
//! agents' files.

pub mod agents;
pub mod document;
pub mod server;
pub mod render;
pub mod state;
mod manage;

pub use agents::{AgentEnv, Profile, Scope};
pub use manage::{Action, AgentStatus, CANONICAL, Change, Mcp, Report, ServerStatus};
pub use server::{Placeholders, Server};
