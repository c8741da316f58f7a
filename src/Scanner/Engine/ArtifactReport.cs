using DriverAudit.Rules.Engine;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// Everything learnt about one artifact: a file, or a module image inside a dump (then
/// <see cref="ParentLocalIndex"/> points at the dump's entry in the same <see cref="InputReport"/>).
/// </summary>
internal sealed record ArtifactReport
{
    /// <summary>URI as reported: relative to the source root when possible.</summary>
    public required string Uri { get; init; }
    /// <summary>For people: the relative path, or the local path when outside the source root.</summary>
    public string DisplayPath => Uri.StartsWith("file:", StringComparison.Ordinal) ? new Uri(Uri).LocalPath : Uri;
    /// <summary>How messages name the artifact: its display path, or <c>dump!module</c> for a dump module.</summary>
    public string DisplayName => ModuleName is null ? DisplayPath : Inputs.DumpModuleTarget.ModulePath(DisplayPath, ModuleName);
    public long? Length { get; init; }
    /// <summary>Lower-case hex SHA-256 of the file, when computed (only when a report needs it).</summary>
    public string? Sha256 { get; init; }
    /// <summary>Index of the parent artifact within <see cref="InputReport.Artifacts"/>, for dump modules.</summary>
    public int? ParentLocalIndex { get; init; }
    /// <summary>Dump modules: base name, e.g. "{GUID}.sys".</summary>
    public string? ModuleName { get; init; }
    /// <summary>Dump modules: DllBase.</summary>
    public ulong? ModuleBase { get; init; }
    /// <summary>Dump modules: FullDllName.</summary>
    public string? ModulePath { get; init; }
    /// <summary>
    /// Dump modules whose image the dump does not fully hold: "partially captured" (a triage dump copied some of
    /// it, e.g. its headers: rules ran on what is there), "not captured" (listed only: module rules ran),
    /// "unloaded" (the dump lists it as unloaded: module rules ran). Null otherwise.
    /// </summary>
    public string? Capture { get; init; }
    /// <summary>True when the image was parsed and rules ran.</summary>
    public bool Analyzed { get; init; }
    public IReadOnlyList<Finding> Findings { get; init; } = [];
    /// <summary>Inventory facts of an analysed image, when <see cref="ScanOptions.CollectInventory"/> asked for them.</summary>
    public Fleet.ImageRecord? Image { get; init; }
    public IReadOnlyList<Notification> Notifications { get; init; } = [];
}

/// <summary>The outcome of one input (one crawler item): one artifact, or a dump and its modules.</summary>
internal sealed record InputReport(IReadOnlyList<ArtifactReport> Artifacts, IReadOnlyList<Notification> Notifications)
{
    public static InputReport Problem(Notification n) => new([], [n]);
}
