//! Errors that point into the provider file: `file:line:column: message`,
//! the form compilers use, so editors and build logs can jump to them.

use std::fmt;

/// A place in a source file, 1-based. After `cpp`, `file` and `line` follow
/// the line markers, so they name the original `.d` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A syntax or semantic error in a provider file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub position: Position,
    pub message: String,
}

impl ParseError {
    pub fn new(position: &Position, message: impl Into<String>) -> ParseError {
        ParseError {
            position: position.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position, self.message)
    }
}

impl std::error::Error for ParseError {}
