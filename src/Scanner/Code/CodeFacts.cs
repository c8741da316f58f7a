using System.Buffers.Binary;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;
using DriverAudit.Scanner.Code.Arm64;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Code facts of one image: call sites of imported APIs with their constant arguments, and privileged
/// instructions. Nothing is read or decoded until a property is first read, so creating this object for every
/// image costs nothing when no rule needs code. The imports are a parameter (not read from the image) so a dump
/// module whose import directory was discarded can pass the imports resolved from its IAT.
/// Not thread-safe, like <see cref="PeImage"/>.
/// </summary>
internal sealed class CodeFacts
{
    private readonly PeImage _image;
    private readonly Func<IReadOnlyList<ImportFact>> _imports;
    private CodeImage? _code;
    private bool _codeLoaded;
    private RegionDecoder? _decoder;
    private IReadOnlyList<CallSite>? _callSites;
    private ILookup<string, CallSite>? _byName;
    private CodeMap? _map;
    private bool _packedChecked;
    private string? _packed;

    /// <param name="imports">The image's imports with their slot RVAs (from the import table or from a dump's IAT).</param>
    public CodeFacts(PeImage image, IReadOnlyList<ImportFact> imports) : this(image, () => imports) { }

    /// <summary>Imports read from the image's own import and delay-import tables, when first needed.</summary>
    public CodeFacts(PeImage image) : this(image, () => PeFacts.ImportsOf(image)) { }

    /// <summary>Imports supplied on first need (a facts adapter whose own import facts are lazy).</summary>
    public CodeFacts(PeImage image, Func<IReadOnlyList<ImportFact>> imports)
    {
        _image = image;
        _imports = imports;
    }

    public PeImage Image => _image;

    private IReadOnlyList<ImportFact>? _importList;

    /// <summary>The imports the call sites are found from: those bound through a known IAT slot.</summary>
    public IReadOnlyList<ImportFact> Imports => _importList ??= WithSlots(_imports());

    private static IReadOnlyList<ImportFact> WithSlots(IReadOnlyList<ImportFact> imports)
    {
        foreach (var i in imports)
            if (i.SlotRva is null) return [.. imports.Where(i => i.SlotRva is not null)];
        return imports;
    }

    /// <summary>False for machines the analysis does not decode (ARM32, IA64, ...): their code facts are empty.</summary>
    public bool Supported => _image.Machine is PeMachine.X64 or PeMachine.X86 or PeMachine.Arm64;

    /// <summary>ARM64 images are analysed by <see cref="Arm64CodeAnalysis"/> (one pass for every fact), not the Iced pipeline.</summary>
    public bool IsArm64 => _image.Machine == PeMachine.Arm64;

    private Arm64CodeAnalysis? _arm64;

    private Arm64CodeAnalysis? Arm64()
    {
        if (_arm64 is not null) return _arm64;
        if (NotEvaluatedReason is not null || Code() is not { IsArm64: true } code) return null;
        return _arm64 = Arm64CodeAnalysis.Run(code, _image, Imports);
    }

    /// <summary>Why the image's code looks packed (see <see cref="PackedCode"/>), or null. Computed once, on first read.</summary>
    public string? Packed
    {
        get
        {
            // The code bytes are read first and measured in place: one read serves the check and the analysis.
            if (!_packedChecked) { _packedChecked = true; _packed = Supported ? PackedCode.Detect(_image, Code()) : null; }
            return _packed;
        }
    }

    /// <summary>
    /// Null when the code facts below are the result of analysing the code; otherwise why they are empty: an
    /// architecture without code analysis, or packed code (whose disassembly would be noise).
    /// </summary>
    public string? NotEvaluatedReason => !Supported
        ? $"no code analysis for {MachineNames.Label(_image.MachineValue)} images"
        : Packed is { } why ? $"packed code ({why})" : null;

    private static readonly AbsentInstructionsFact Arm64Absent = new(
        InstructionNames.X86Only,
        "not applicable to ARM64 images (port I/O and x86 MSR instructions do not exist there)");

    /// <summary>Instructions the image's architecture does not have (ARM64: port I/O, wrmsr/rdmsr), or null.</summary>
    public AbsentInstructionsFact? AbsentInstructions => IsArm64 && NotEvaluatedReason is null ? Arm64Absent : null;

    private OpcodeNeedles _searched, _found;
    private Dictionary<OpcodeNeedles, List<InstructionHit>?>? _around;
    private long _aroundDecoded;

    /// <summary>
    /// The hits an <c>instruction:</c> feature with these mnemonics or mov-to registers can match, found without the
    /// whole map when that is provable: none when the executable bytes hold none of their opcodes (see
    /// <see cref="InstructionScanner.Needles"/>; every instruction the map decodes lies inside one section's bytes), else
    /// those of the x64 .pdata functions around the opcodes (<see cref="CodeMap.HitsAround"/>). Null when only the whole
    /// map answers (then read <see cref="Instructions"/>): code not evaluated, one-byte opcodes wanted (in, out),
    /// no proof, or the map already built (it is the cheaper answer then). ARM64: see <see cref="Arm64HitsFor"/>.
    /// </summary>
    public IReadOnlyList<InstructionHit>? HitsFor(IReadOnlyList<string>? mnemonics, IReadOnlyList<string>? controlRegisters)
    {
        if (IsArm64) return Arm64HitsFor(mnemonics, controlRegisters);
        if (_map is not null || NotEvaluatedReason is not null || Code() is not { } code) return null;
        if (InstructionScanner.Needles(mnemonics, controlRegisters) is not { } needles) return null;
        foreach (var needle in (ReadOnlySpan<OpcodeNeedles>)[OpcodeNeedles.Wrmsr, OpcodeNeedles.Rdmsr, OpcodeNeedles.MovToCr])
        {
            if ((needles & needle) == 0 || (_searched & needle) != 0) continue;
            _searched |= needle;
            foreach (var section in code.Sections)
            {
                if (!InstructionScanner.Contains(section.Bytes, InstructionScanner.SecondByte(needle))) continue;
                _found |= needle;
                break;
            }
        }
        var present = needles & _found;
        if (present == OpcodeNeedles.None) return [];
        _around ??= [];
        if (!_around.TryGetValue(present, out var hits))
        {
            _around[present] = hits = CodeMap.HitsAround(code, _image, present, out var decoded);
            _aroundDecoded += decoded;
        }
        return hits;
    }

    private bool? _arm64Moves;

    /// <summary>
    /// <see cref="HitsFor"/> on ARM64, whose only instruction facts are msr/mrs: none for a feature that cannot match
    /// them (in, out, wrmsr...: the rule is then reported not applicable from <see cref="AbsentInstructions"/>) or when
    /// no executable word has a system-register move encoding (<see cref="A64SystemMoves"/>); else null.
    /// </summary>
    private IReadOnlyList<InstructionHit>? Arm64HitsFor(IReadOnlyList<string>? mnemonics, IReadOnlyList<string>? controlRegisters)
    {
        if (_arm64 is not null || NotEvaluatedReason is not null || Code() is not { } code) return null;
        if (controlRegisters is null && (mnemonics is null || !mnemonics.Any(m => m is InstructionNames.Msr or InstructionNames.Mrs))) return [];
        _arm64Moves ??= code.Sections.Any(A64SystemMoves.AnyIn);
        return _arm64Moves == true ? null : [];
    }

    /// <summary>Every call site of every import, by RVA.</summary>
    public IReadOnlyList<CallSite> CallSites => _callSites ??= FindCallSites();

    /// <summary>Privileged instructions of the image's functions (function-bounded disassembly), by RVA.</summary>
    public IReadOnlyList<InstructionHit> Instructions => IsArm64 ? Arm64()?.Hits ?? [] : Map()?.Hits ?? [];

    /// <summary>RVAs that decoded code takes the address of or reads (empty when the code is not evaluated).</summary>
    public IReadOnlySet<uint> References => (IsArm64 ? Arm64()?.References : Map()?.References) ?? (IReadOnlySet<uint>)new HashSet<uint>();

    /// <summary>
    /// <see cref="References"/> when the analysis that finds them has already run, else null: for a caller with an
    /// answer of its own that is cheaper than running it (see <see cref="StackCookie.FromCode"/>).
    /// </summary>
    public IReadOnlySet<uint>? ReferencesIfAnalysed => IsArm64 ? _arm64?.References : _map?.References;

    /// <summary>True when function discovery failed and instruction facts come from a linear sweep (labelled: no function).</summary>
    public bool LinearFallback => !IsArm64 && (Map()?.Fallback ?? false);

    /// <summary>Instructions decoded for this image so far (0 until a code fact is read).</summary>
    public long InstructionsDecoded => (_decoder?.InstructionsDecoded ?? 0) + (_map?.InstructionsDecoded ?? 0) + (_arm64?.InstructionsDecoded ?? 0) + _aroundDecoded;

    /// <summary>Functions the shared pass found (0 until it ran).</summary>
    public int FunctionCount => _map?.FunctionCount ?? _arm64?.FunctionCount ?? 0;

    private IReadOnlyList<WrappedCall>? _wrapped;

    /// <summary>
    /// Pool calls whose tag, pool type or flags are the parameters of the driver's own wrapper, with the values the
    /// wrapper's callers pass (see <see cref="WrapperTracer"/>). Only decoded when first read.
    /// </summary>
    public IReadOnlyList<WrappedCall> WrappedCalls => _wrapped ??= TraceWrappers();

    private IReadOnlyList<WrappedCall> TraceWrappers()
    {
        if (IsArm64) return Arm64()?.Wrapped ?? [];
        var sites = CallSites;
        if (Code() is not { } code || !sites.Any(s => PoolApis.Find(s.Api.Ref) is not null)) return [];
        return new WrapperTracer(code, sites, _image.AddressOfEntryPoint).Trace();
    }

    /// <summary>Call sites of an API by function name (any module), e.g. "ExAllocatePoolWithTag".</summary>
    public IEnumerable<CallSite> CallSitesOf(string name) =>
        (_byName ??= CallSites.Where(s => s.Api.Name is not null).ToLookup(s => s.Api.Name!, StringComparer.Ordinal))[name];

    private CodeImage? Code()
    {
        if (!_codeLoaded)
        {
            _codeLoaded = true;
            _code = Supported ? CodeImage.Load(_image) : null;
        }
        return _code;
    }

    /// <summary>The one function-bounded disassembly of the image, built on first need; null when not evaluated.</summary>
    private CodeMap? Map()
    {
        if (_map is not null) return _map;
        if (NotEvaluatedReason is not null || Code() is not { IsArm64: false } code) return null;
        return _map = CodeMap.Build(code, _image);
    }

    private IReadOnlyList<CallSite> FindCallSites()
    {
        if (IsArm64) return Arm64()?.CallSites ?? [];
        if (NotEvaluatedReason is not null || Code() is not { } code) return [];
        _decoder = new RegionDecoder(code);
        return new CallSiteFinder(code, _decoder, Imports, rva => Map()?.FunctionOf(rva)).FindAll();
    }

    private HashSet<uint>? _viaDescriptor;

    /// <summary>
    /// Whether decoded code takes the address <paramref name="rva"/> or the address of a counted-string descriptor
    /// (UNICODE_STRING / ANSI_STRING: Length, MaximumLength, Buffer) whose Buffer is <paramref name="rva"/>.
    /// Null when the code is not evaluated.
    /// </summary>
    public bool? IsReferenced(uint rva)
    {
        if (NotEvaluatedReason is not null || Code() is null) return null;
        return References.Contains(rva) || ReferencedViaDescriptor().Contains(rva);
    }

    /// <summary>
    /// The Buffer RVAs of the counted-string descriptors at referenced addresses (see <see cref="IsReferenced"/>),
    /// found on first need; empty when the code is not evaluated.
    /// </summary>
    public IReadOnlySet<uint> ReferencedViaDescriptor()
    {
        if (_viaDescriptor is not null) return _viaDescriptor;
        _viaDescriptor = [];
        if (NotEvaluatedReason is not null || Code() is not { } code) return _viaDescriptor;
        Span<byte> d = stackalloc byte[16];
        // References come in ascending order: where reads allow it, one window read serves many of them.
        using var window = CodeImage.PositionIndependent(_image) ? new WindowedReader(_image) : null;
        if (References is RvaSet set)
            foreach (var r in set.All()) Descriptor(r, d);
        else
            foreach (var r in References) Descriptor(r, d);
        return _viaDescriptor;

        void Descriptor(uint r, Span<byte> d)
        {
            var need = code.Is64 ? 16 : 8;
            if ((window is not null ? window.Read(r, d[..need]) : _image.ReadRva(r, d[..need])) < need) return;
            var length = BinaryPrimitives.ReadUInt16LittleEndian(d);
            var max = BinaryPrimitives.ReadUInt16LittleEndian(d[2..]);
            if (length == 0 || length > max) return;
            ulong buffer = code.Is64 ? BinaryPrimitives.ReadUInt64LittleEndian(d[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(d[4..]);
            if (code.AbsoluteToRva(buffer) is { } b && b < _image.SizeOfImage) _viaDescriptor.Add(b);
        }
    }
}
