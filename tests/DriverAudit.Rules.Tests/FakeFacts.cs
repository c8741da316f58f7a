using DriverAudit.Rules.Facts;

namespace DriverAudit.Rules.Tests;

/// <summary>In-memory facts that count every member read, to prove the engine asks only what rules need.</summary>
internal sealed class FakeFacts : IImageFacts
{
    private readonly string _displayName;
    private readonly HeaderFact _header;
    private readonly IReadOnlyList<SectionFact> _sections;
    private readonly IReadOnlyList<ImportFact> _imports;
    private readonly IReadOnlyList<ExportFact> _exports;
    private readonly Dictionary<string, bool?> _characteristics;

    public FakeFacts(
        IEnumerable<ImportFact>? imports = null,
        IEnumerable<SectionFact>? sections = null,
        IEnumerable<ExportFact>? exports = null,
        HeaderFact? header = null,
        IReadOnlyDictionary<string, bool?>? characteristics = null,
        string displayName = "drivers/test.sys")
    {
        _displayName = displayName;
        _header = header ?? MakeHeader();
        _sections = [.. sections ?? []];
        _imports = [.. imports ?? []];
        _exports = [.. exports ?? []];
        _characteristics = new(characteristics ?? new Dictionary<string, bool?>(), StringComparer.Ordinal);
    }

    public int DisplayNameReads, HeaderReads, SectionReads, ImportReads, ExportReads, CharacteristicReads;
    public List<string> CharacteristicsAsked { get; } = [];

    public string DisplayName { get { Interlocked.Increment(ref DisplayNameReads); return _displayName; } }
    public HeaderFact Header { get { Interlocked.Increment(ref HeaderReads); return _header; } }
    public IReadOnlyList<SectionFact> Sections { get { Interlocked.Increment(ref SectionReads); return _sections; } }
    public IReadOnlyList<ImportFact> Imports { get { Interlocked.Increment(ref ImportReads); return _imports; } }
    public IReadOnlyList<ExportFact> Exports { get { Interlocked.Increment(ref ExportReads); return _exports; } }

    public int ModuleReads, StringReads, VersionInfoReads, SignatureReads, HashReads, CallReads, InstructionReads;

    public ModuleFact ModuleValue { get; init; } = new("file", "test.sys", "drivers/test.sys", null);
    public IReadOnlyList<StringFact> StringsValue { get; init; } = [];
    public IReadOnlyDictionary<string, string> VersionInfoValue { get; init; } = new Dictionary<string, string>();
    public SignatureFact? SignatureValue { get; init; }
    public string? FileSha256Value { get; init; }
    public string? AuthenticodeSha256Value { get; init; }
    public string? AuthenticodeSha1Value { get; init; }
    public IReadOnlyList<CallFact> CallsValue { get; init; } = [];
    public IReadOnlyList<InstructionFact> InstructionsValue { get; init; } = [];
    /// <summary>RVAs of the strings the code uses; null: the code is not evaluated (IsStringReferenced answers null).</summary>
    public IReadOnlySet<uint>? ReferencedStringRvas { get; init; }
    public string? CodeNotEvaluatedValue { get; init; }

    public ModuleFact Module { get { Interlocked.Increment(ref ModuleReads); return ModuleValue; } }
    public IReadOnlyList<StringFact> Strings { get { Interlocked.Increment(ref StringReads); return StringsValue; } }
    public IReadOnlyDictionary<string, string> VersionInfo { get { Interlocked.Increment(ref VersionInfoReads); return VersionInfoValue; } }
    public SignatureFact? Signature { get { Interlocked.Increment(ref SignatureReads); return SignatureValue; } }
    public string? FileSha256 { get { Interlocked.Increment(ref HashReads); return FileSha256Value; } }
    public string? AuthenticodeSha256 { get { Interlocked.Increment(ref HashReads); return AuthenticodeSha256Value; } }
    public string? AuthenticodeSha1 { get { Interlocked.Increment(ref HashReads); return AuthenticodeSha1Value; } }
    public IReadOnlyList<CallFact> Calls { get { Interlocked.Increment(ref CallReads); return CallsValue; } }
    public IReadOnlyList<InstructionFact> Instructions { get { Interlocked.Increment(ref InstructionReads); return InstructionsValue; } }
    public bool? IsStringReferenced(StringFact value) => ReferencedStringRvas?.Contains(value.Rva);

    public List<StringNeedle> NeedlesAsked { get; } = [];

    /// <summary>
    /// Answers exactly (some string matches), after checking the feature's needle against every string that matches:
    /// a needle a matching string lacks would let the scanner skip a real match, so every string test checks it.
    /// </summary>
    /// <summary>The needles passed along with each question, in the order asked.</summary>
    public List<IReadOnlyList<StringNeedle>> AlongWith { get; } = [];

    public bool MayHaveString(StringNeedle needle, Func<StringFact, bool> match, IReadOnlyList<StringNeedle> alongWith)
    {
        lock (NeedlesAsked)
        {
            NeedlesAsked.Add(needle);
            AlongWith.Add(alongWith);
        }
        var any = false;
        var comparison = needle.IgnoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        foreach (var s in StringsValue)
        {
            if (!match(s)) continue;
            any = true;
            var holds = (s.Utf16 ? needle.Utf16 : needle.Ascii)
                && (needle.AtStart ? s.Value.StartsWith(needle.Text, comparison) : s.Value.Contains(needle.Text, comparison));
            if (!holds) throw new InvalidOperationException($"the needle {needle} does not hold for the matching string '{s.Value}'");
        }
        return any;
    }
    public string? CodeNotEvaluated => CodeNotEvaluatedValue;

    public bool? GetCharacteristic(string name)
    {
        Interlocked.Increment(ref CharacteristicReads);
        lock (CharacteristicsAsked) CharacteristicsAsked.Add(name);
        // Unlisted characteristics are unknown: the fake never invents an answer.
        return _characteristics.TryGetValue(name, out var value) ? value : null;
    }

    public static HeaderFact MakeHeader(
        ushort machine = 0x8664, ushort subsystem = 1, ushort fileCharacteristics = 0x0022,
        ushort dllCharacteristics = 0x0160, uint sectionAlignment = 0x1000, uint fileAlignment = 0x200) =>
        new(machine, subsystem, machine == 0x8664, fileCharacteristics, dllCharacteristics, sectionAlignment, fileAlignment,
            0x140000000, 0x8000, 0x12345678, 0);

    public static ImportFact Import(string module, string name, bool delayed = false) => new(module, name, null, delayed);
    public static ImportFact ImportByOrdinal(string module, int ordinal, bool delayed = false) => new(module, null, ordinal, delayed);

    public static SectionFact Section(int index, string name, uint rva, uint characteristics) =>
        new(index, name, rva, 0x1000, 0x1000, characteristics);

    public const uint Text = SectionFact.CntCode | SectionFact.MemExecute | SectionFact.MemRead;
    public const uint Data = SectionFact.MemRead | SectionFact.MemWrite;
    public const uint Rwx = SectionFact.MemExecute | SectionFact.MemRead | SectionFact.MemWrite;
}
