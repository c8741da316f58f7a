using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Code facts of one image: call sites of imported APIs with their constant arguments, and privileged
/// instructions. Nothing is read or decoded until a property is first read, so creating this object for every
/// image costs nothing when no rule needs code. The imports are a parameter (not read from the image) so a dump
/// module whose import directory was discarded can pass the imports resolved from its IAT.
/// Not thread-safe, like <see cref="PeImage"/>.
/// </summary>
public sealed class CodeFacts
{
    private readonly PeImage _image;
    private readonly Func<IReadOnlyList<CodeImport>> _imports;
    private CodeImage? _code;
    private bool _codeLoaded;
    private RegionDecoder? _decoder;
    private IReadOnlyList<CallSite>? _callSites;
    private ILookup<string, CallSite>? _byName;
    private IReadOnlyList<InstructionHit>? _instructions;
    private long _sweepDecoded;

    /// <param name="imports">The image's imports with their slot RVAs (from the import table or from a dump's IAT).</param>
    public CodeFacts(PeImage image, IReadOnlyList<CodeImport> imports) : this(image, () => imports) { }

    /// <summary>Imports read from the image's own import and delay-import tables, when first needed.</summary>
    public CodeFacts(PeImage image) : this(image, () => CodeImport.FromImage(image)) { }

    /// <summary>Imports supplied on first need (a facts adapter whose own import facts are lazy).</summary>
    public CodeFacts(PeImage image, Func<IReadOnlyList<CodeImport>> imports)
    {
        _image = image;
        _imports = imports;
    }

    public PeImage Image => _image;

    private IReadOnlyList<CodeImport>? _importList;

    /// <summary>The imports the call sites are found from.</summary>
    public IReadOnlyList<CodeImport> Imports => _importList ??= _imports();

    /// <summary>False for machines the analysis does not decode (ARM64, ...): their code facts are empty.</summary>
    public bool Supported => _image.Machine is PeMachine.X64 or PeMachine.X86;

    /// <summary>Every call site of every import, by RVA.</summary>
    public IReadOnlyList<CallSite> CallSites => _callSites ??= FindCallSites();

    /// <summary>Privileged instructions found by a linear sweep of the executable sections, by RVA.</summary>
    public IReadOnlyList<InstructionHit> Instructions => _instructions ??= SweepInstructions();

    /// <summary>Instructions decoded for this image so far (0 until a code fact is read).</summary>
    public long InstructionsDecoded => (_decoder?.InstructionsDecoded ?? 0) + _sweepDecoded;

    private IReadOnlyList<WrappedCall>? _wrapped;

    /// <summary>
    /// Pool calls whose tag, pool type or flags are the parameters of the driver's own wrapper, with the values the
    /// wrapper's callers pass (see <see cref="WrapperTracer"/>). Only decoded when first read.
    /// </summary>
    public IReadOnlyList<WrappedCall> WrappedCalls => _wrapped ??= TraceWrappers();

    private IReadOnlyList<WrappedCall> TraceWrappers()
    {
        var sites = CallSites;
        if (Code() is not { } code || !sites.Any(s => PoolApis.Find(s.Api) is not null)) return [];
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

    private IReadOnlyList<CallSite> FindCallSites()
    {
        if (Code() is not { } code) return [];
        _decoder = new RegionDecoder(code);
        return new CallSiteFinder(code, _decoder, Imports).FindAll();
    }

    private IReadOnlyList<InstructionHit> SweepInstructions()
    {
        if (Code() is not { } code) return [];
        var hits = InstructionScanner.Sweep(code, out var decoded);
        _sweepDecoded = decoded;
        return hits;
    }
}
