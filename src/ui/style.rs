//! Shared Tailwind class lists, so that every page has the same look:
//! cards, tables, form controls and buttons, each with its dark variant.
//! (Tailwind finds these names by scanning the sources, so they must stay
//! whole strings.)

/// A white panel with a border: tables, charts, forms.
pub const CARD: &str =
    "rounded-xl border border-slate-200 bg-white shadow-sm dark:border-slate-800 dark:bg-slate-900";
/// A table inside a CARD.
pub const TABLE: &str = "w-full text-left text-sm";
pub const THEAD: &str = "bg-slate-50 text-xs uppercase tracking-wide text-slate-500 dark:bg-slate-800/60 dark:text-slate-400";
pub const TH: &str = "px-4 py-2 font-medium";
pub const TR: &str =
    "border-t border-slate-100 hover:bg-slate-50 dark:border-slate-800 dark:hover:bg-slate-800/50";
pub const TD: &str = "px-4 py-2";
/// A text input or select.
pub const INPUT: &str = "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm text-slate-900 shadow-sm focus:border-blue-500 focus:outline-none focus:ring-2 focus:ring-blue-500/30 dark:border-slate-700 dark:bg-slate-950 dark:text-slate-100";
/// A label wrapping its control.
pub const LABEL: &str =
    "flex flex-col gap-1 text-sm font-medium text-slate-700 dark:text-slate-300";
pub const BUTTON_PRIMARY: &str = "inline-flex items-center justify-center gap-1.5 rounded-md bg-blue-600 px-3 py-1.5 text-sm font-medium text-white shadow-sm hover:bg-blue-700 disabled:opacity-60";
pub const BUTTON_SECONDARY: &str = "inline-flex items-center justify-center gap-1.5 rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-700 shadow-sm hover:bg-slate-50 disabled:opacity-60 dark:border-slate-700 dark:bg-slate-900 dark:text-slate-200 dark:hover:bg-slate-800";
pub const BUTTON_DANGER: &str = "inline-flex items-center justify-center gap-1.5 rounded-md bg-red-600 px-3 py-1.5 text-sm font-medium text-white shadow-sm hover:bg-red-700 disabled:opacity-60";
/// A link in running text or a table cell.
pub const LINK: &str = "text-blue-700 hover:underline dark:text-blue-400";
/// Muted secondary text.
pub const MUTED: &str = "text-slate-500 dark:text-slate-400";
/// A section heading inside a page.
pub const H2: &str = "mb-3 text-lg font-semibold text-slate-900 dark:text-slate-100";
/// An error message shown next to a form.
pub const ALERT_ERROR: &str = "rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-900 dark:bg-red-950 dark:text-red-200";
/// A success message shown next to a form.
pub const ALERT_OK: &str = "rounded-md border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800 dark:border-emerald-900 dark:bg-emerald-950 dark:text-emerald-200";
