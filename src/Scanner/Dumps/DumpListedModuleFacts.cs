using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// Facts of a module a dump lists without holding an image of it (a triage dump's uncaptured module, an
/// unloaded driver, a module whose headers are paged out): provenance only. Evaluate it with
/// <see cref="DriverAudit.Rules.Engine.RuleSet.EvaluateModuleOnly"/>, which never reads the empty image facts.
/// Kept apart from <see cref="Pe.PeFacts"/> on purpose: it has no image, so an "absent image" mode there would
/// put a null check in every image member for facts no rule run on it reads; the provenance of a loaded
/// module is built in one place (<see cref="DumpModuleFacts.Provenance(DumpModule)"/>) for both.
/// </summary>
internal sealed class DumpListedModuleFacts(ModuleFact module, string displayName) : IImageFacts
{
    private static readonly HeaderFact NoHeader = new(0, 0, false, 0, 0, 0, 0, 0, 0, 0, 0);

    /// <summary>A loaded module's provenance ("dump").</summary>
    public static DumpListedModuleFacts Of(DumpModule m, string dumpPath) =>
        new(DumpModuleFacts.Provenance(m), DumpModuleTarget.ModuleShortName(dumpPath, m.Name));

    /// <summary>An unloaded driver's provenance ("unloaded"; its path is its name).</summary>
    public static DumpListedModuleFacts Of(UnloadedDriver d, string dumpPath) =>
        new(new ModuleFact("unloaded", d.Name, d.Name, d.Base), DumpModuleTarget.ModuleShortName(dumpPath, d.Name) + " (unloaded)");

    public string DisplayName { get; } = displayName;
    public ModuleFact Module { get; } = module;
    public HeaderFact Header => NoHeader;
    public IReadOnlyList<SectionFact> Sections => [];
    public IReadOnlyList<ImportFact> Imports => [];
    public IReadOnlyList<ExportFact> Exports => [];
    public bool? GetCharacteristic(string name) => null;
    public IReadOnlyList<StringFact> Strings => [];
    public IReadOnlyDictionary<string, string> VersionInfo { get; } = new Dictionary<string, string>();
    public SignatureFact? Signature => null;
    public string? FileSha256 => null;
    public string? AuthenticodeSha256 => null;
    public string? AuthenticodeSha1 => null;
    public IReadOnlyList<CallFact> Calls => [];
    public IReadOnlyList<InstructionFact> Instructions => [];
}
