using DriverAudit.Rules.Engine;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// One result: a rule that matched one anchor of one artifact. Identity (the fingerprint) is built
/// from stable facts only — rule id, artifact path, anchor key — never addresses or timestamps.
/// </summary>
/// <param name="Level">Effective level (after --level overrides).</param>
/// <param name="Location">Human locator inside the binary, e.g. "import ntoskrnl.exe!ExAllocatePool" or "section .wx".</param>
/// <param name="BaselineState">"new" or "unchanged" when the scan has a baseline; null otherwise.</param>
internal sealed record Finding(Rule Rule, RuleLevel Level, string Message, Anchor Anchor, string Fingerprint, string Location, string? BaselineState = null)
{
    /// <summary>The config file's suppression that accepts this result, or null: suppressed results are reported, marked, and do not gate.</summary>
    public Suppression? Suppression { get; init; }
}
