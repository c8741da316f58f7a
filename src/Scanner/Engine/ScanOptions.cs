using DriverAudit.Rules.Engine;

namespace DriverAudit.Scanner.Engine;

/// <summary>How a scan runs and gates.</summary>
/// <param name="Jobs">Inputs analysed in parallel.</param>
/// <param name="FailOn">Lowest finding level that makes the exit code 1; null = never.</param>
/// <param name="FailOnInputError">Exit 3 when some inputs could not be analysed.</param>
/// <param name="ComputeHashes">SHA-256 of each file, for SARIF artifacts (read only when a report needs it).</param>
/// <param name="CollectInventory">Describe each analysed image (<see cref="ArtifactReport.Image"/>) for inventories.</param>
public sealed record ScanOptions(int Jobs, RuleLevel? FailOn, bool FailOnInputError, bool ComputeHashes, bool CollectInventory = false);
