using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// Facts of a module image inside a dump: everything as for a file (<see cref="PeFacts"/> over the loaded
/// layout), except imports, which come from the resolved IAT so that a driver whose import directory was
/// discarded with INIT still shows rules what it imports. The IAT is resolved on first read.
/// </summary>
internal sealed class DumpModuleFacts : IImageFacts
{
    private readonly PeFacts _pe;
    private readonly Func<IatResolution> _resolve;
    private IatResolution? _iat;

    /// <param name="dumpPath">Path or URI of the dump; its file name prefixes <see cref="DisplayName"/>.</param>
    public DumpModuleFacts(PeImage image, DumpModule module, DumpExportCatalog catalog, bool is64, string dumpPath)
    {
        DumpModule = module;
        DisplayName = DumpModuleTarget.ModuleShortName(dumpPath, module.Name);
        _pe = new PeFacts(image, DisplayName);
        _resolve = () => IatResolver.Resolve(image, module, catalog, is64);
    }

    public DumpModule DumpModule { get; }
    public PeImage Image => _pe.Image;
    private CodeFacts? _code;
    private IReadOnlyList<CallFact>? _calls;

    /// <summary>Provenance: the loader's entry, never a file.</summary>
    public ModuleFact Module => _module ??= new("dump", DumpModule.Name, DumpModule.FullPath, DumpModule.Base);
    private ModuleFact? _module;
    private IReadOnlyList<InstructionFact>? _instructions;

    /// <summary>Call sites found through the resolved IAT slots (the import table itself may be gone).</summary>
    public CodeFacts Code => _code ??= new CodeFacts(_pe.Image, () => Imports);
    public IReadOnlyList<CallFact> Calls => _calls ??= PeFacts.BuildCalls(Code);
    // The same CodeFacts as the calls: the code is copied out of the dump once per module.
    public IReadOnlyList<InstructionFact> Instructions => _instructions ??= PeFacts.BuildInstructions(Code);
    public IReadOnlyList<StringFact> Strings => _pe.Strings;
    public bool MayHaveString(StringNeedle needle, Func<StringFact, bool> match) => _pe.MayHaveString(needle, match);
    public bool? IsStringReferenced(StringFact value) => Code.IsReferenced(value.Rva);
    public string? CodeNotEvaluated => Code.NotEvaluatedReason;

    public AbsentInstructionsFact? AbsentInstructions => Code.AbsentInstructions;

    public IReadOnlyList<InstructionFact> InstructionsFor(IReadOnlyList<string>? mnemonics, IReadOnlyList<string>? controlRegisters) =>
        Code.HitsFor(mnemonics, controlRegisters) is { } hits ? PeFacts.BuildInstructions(hits) : Instructions;
    public IReadOnlyDictionary<string, string> VersionInfo => _pe.VersionInfo;
    // A loaded image has no certificate table and is not a file: these answer null through PeFacts.
    public SignatureFact? Signature => _pe.Signature;
    public string? FileSha256 => _pe.FileSha256;
    public string? AuthenticodeSha256 => _pe.AuthenticodeSha256;
    public string? AuthenticodeSha1 => _pe.AuthenticodeSha1;

    /// <summary>The resolved IAT (computed once).</summary>
    public IatResolution Iat => _iat ??= _resolve();

    /// <summary>"MEMORY.DMP!{GUID}.sys".</summary>
    public string DisplayName { get; }
    public HeaderFact Header => _pe.Header;
    public IReadOnlyList<SectionFact> Sections => _pe.Sections;
    public IReadOnlyList<ImportFact> Imports => Iat.Imports;
    public IReadOnlyList<ExportFact> Exports => _pe.Exports;

    public bool? GetCharacteristic(string name)
    {
        // Where the IAT is, as found in memory (the descriptors PeFacts would use may be gone).
        if (name == Characteristics.IatInExecutableSection && Iat.IatRva is uint rva)
            return _pe.Image.FindSection(rva)?.Executable ?? false;
        return _pe.GetCharacteristic(name);
    }
}
