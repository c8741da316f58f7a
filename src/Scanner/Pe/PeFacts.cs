using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Signing;

namespace DriverAudit.Scanner.Pe;

/// <summary>
/// The one facts class of an image, a file or a module of a dump: a <see cref="PeImage"/>, where its imports
/// come from (its import directories, or a dump's resolved IAT) and its provenance. Every property is computed
/// on first read and cached, so a rule pack that needs only the header never parses a directory.
/// </summary>
internal sealed class PeFacts : IImageFacts
{
    private const ushort DllCharacteristicsForceIntegrity = 0x80, DllCharacteristicsNxCompat = 0x100, DllCharacteristicsGuardCf = 0x4000;
    private readonly PeImage _image;
    private HeaderFact? _header;
    private SectionFact[]? _sections;
    private IReadOnlyList<ImportFact>? _imports;
    private ExportFact[]? _exports;
    private ModuleFact? _module;
    private IReadOnlyList<StringFact>? _strings;
    private Dictionary<StringNeedle, PeStrings.NeedleHits>? _needleHits;
    private IReadOnlyDictionary<string, string>? _versionInfo;
    private Lazy<string?>? _fileSha256;
    private ImageSigning? _signing;
    private CodeFacts? _code;
    private IReadOnlyList<CallFact>? _calls;
    private IReadOnlyList<InstructionFact>? _instructions;
    private Lazy<SignatureFact?>? _signature;
    private readonly Func<IatResolution>? _resolveIat;
    private IatResolution? _iat;

    /// <summary>Facts of an image whose imports come from its import directories; provenance from its origin.</summary>
    public PeFacts(PeImage image, string? displayName = null) : this(image, displayName, null, null) { }

    /// <param name="module">Provenance; null derives it from the image's origin.</param>
    /// <param name="resolveIat">
    /// Null: imports come from the import and delay-import directories. Otherwise the import source is this
    /// resolution of the IAT as loaded (a dump module, whose import directory may have been discarded with INIT);
    /// it runs on the first read of <see cref="Iat"/>, <see cref="Imports"/> or what needs them.
    /// </param>
    internal PeFacts(PeImage image, string? displayName, ModuleFact? module, Func<IatResolution>? resolveIat)
    {
        _image = image;
        DisplayName = displayName ?? DefaultDisplayName(image.Source.Origin);
        _module = module;
        _resolveIat = resolveIat;
    }

    public PeImage Image => _image;
    public string DisplayName { get; }

    /// <summary>The resolved IAT the imports come from (computed once); null when they come from the import directories.</summary>
    public IatResolution? Iat => _resolveIat is null ? null : _iat ??= _resolveIat();

    public HeaderFact Header => _header ??= new HeaderFact(
        _image.MachineValue, _image.Subsystem, _image.Is64Bit, _image.Characteristics, _image.DllCharacteristics,
        _image.SectionAlignment, _image.FileAlignment, _image.ImageBase, _image.SizeOfImage, _image.TimeDateStamp, _image.CheckSum);

    public IReadOnlyList<SectionFact> Sections => _sections ??= BuildSections();

    public IReadOnlyList<ImportFact> Imports => _imports ??= Iat is { } iat ? iat.Imports : ImportsOf(_image);

    public IReadOnlyList<ExportFact> Exports => _exports ??= BuildExports();

    public ModuleFact Module => _module ??= BuildModule(_image.Source.Origin);

    public IReadOnlyList<StringFact> Strings => _strings ??= PeStrings.Extract(_image);

    /// <summary>
    /// Answered from one search of the image's bytes for the needle and every needle asked along with it (each
    /// searched once per image, on the first question about it), or true once the strings are extracted anyway.
    /// </summary>
    public bool MayHaveString(StringNeedle needle, Func<StringFact, bool> match, IReadOnlyList<StringNeedle> alongWith)
    {
        if (_strings is not null) return true;
        _needleHits ??= [];
        if (!_needleHits.TryGetValue(needle, out var hits))
        {
            var wanted = new List<StringNeedle> { needle };
            foreach (var other in alongWith)
                if (!wanted.Contains(other) && !_needleHits.ContainsKey(other)) wanted.Add(other);
            var found = PeStrings.Search(_image, wanted);
            for (var i = 0; i < found.Length; i++) _needleHits[wanted[i]] = found[i];
            hits = found[0];
        }
        return hits.MayHave(match);
    }

    public IReadOnlyDictionary<string, string> VersionInfo => _versionInfo ??= BuildVersionInfo();

    /// <summary>Only a file has a file hash; a dump module's bytes are not a file.</summary>
    public string? FileSha256 => (_fileSha256 ??= new Lazy<string?>(() =>
        _image.Layout == ImageLayout.File ? ImageHashes.Sha256(_image.Source) : null)).Value;

    /// <summary>Authenticode parsing and hashing, each done once and only when a rule asks.</summary>
    public ImageSigning Signing => _signing ??= new ImageSigning(_image);

    public SignatureFact? Signature => (_signature ??= new Lazy<SignatureFact?>(BuildSignature)).Value;
    public string? AuthenticodeSha256 => Signing.Hash.Hash?.Sha256;
    public string? AuthenticodeSha1 => Signing.Hash.Hash?.Sha1;

    /// <summary>
    /// Call sites and notable instructions, decoded only when a rule asks (a dump module's code is copied out of
    /// the dump once, here). The calls are found from the import facts' IAT slots, whichever the import source.
    /// </summary>
    public CodeFacts Code => _code ??= new CodeFacts(_image, () => Imports);

    public IReadOnlyList<CallFact> Calls => _calls ??= BuildCalls(Code);

    public IReadOnlyList<InstructionFact> Instructions => _instructions ??= BuildInstructions(Code);

    public bool? IsStringReferenced(StringFact value) => Code.IsReferenced(value.Rva);

    public string? CodeNotEvaluated => Code.NotEvaluatedReason;

    public AbsentInstructionsFact? AbsentInstructions => Code.AbsentInstructions;

    public IReadOnlyList<InstructionFact> InstructionsFor(IReadOnlyList<string>? mnemonics, IReadOnlyList<string>? controlRegisters) =>
        Code.HitsFor(mnemonics, controlRegisters) is { } hits ? PeFacts.BuildInstructions(hits) : Instructions;

    /// <summary>One fact per (function, mnemonic, control register): the first address and the count, in address order.</summary>
    internal static IReadOnlyList<InstructionFact> BuildInstructions(CodeFacts code) => BuildInstructions(code.Instructions);

    internal static IReadOnlyList<InstructionFact> BuildInstructions(IReadOnlyList<InstructionHit> hits)
    {
        var groups = new Dictionary<(uint?, string, string?), int>();
        var result = new List<InstructionFact>();
        foreach (var h in hits) // in address order: the first of a group is its lowest address
        {
            var key = (h.FunctionRva, h.Mnemonic, h.ControlRegister);
            if (groups.TryGetValue(key, out var at)) result[at] = result[at] with { Count = result[at].Count + 1 };
            else
            {
                groups[key] = result.Count;
                result.Add(new InstructionFact(h.Rva, h.Mnemonic, h.ControlRegister, h.FunctionRva));
            }
        }
        return result;
    }

    /// <summary>
    /// Call facts of an image: its import call sites, then the calls into its own pool wrappers that pass a
    /// constant pool argument on (<see cref="CodeFacts.WrappedCalls"/>), numbered after the direct ones so that
    /// adding wrapper facts never renumbers a direct call's key.
    /// </summary>
    internal static IReadOnlyList<CallFact> BuildCalls(CodeFacts code)
    {
        var direct = BuildCalls(code.CallSites);
        var wrapped = code.WrappedCalls;
        if (wrapped.Count == 0) return direct;
        var result = new List<CallFact>(direct.Count + wrapped.Count);
        result.AddRange(direct);
        var ordinals = new Dictionary<(string, uint?), int>();
        foreach (var c in direct)
        {
            ref var n = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(ordinals, (c.Api.Key, c.FunctionRva), out _);
            n = Math.Max(n, c.Ordinal + 1);
        }
        foreach (var w in wrapped.OrderBy(w => w.CallerSiteRva).ThenBy(w => w.Site.SiteRva))
        {
            if (PoolApis.Find(w.Site.Api.Ref) is not { } signature) continue;
            // A call into a wrapper is a fact only when it proves a pool argument the call inside does not.
            var proves = w.Via.Count == 0;
            foreach (var a in (ReadOnlySpan<int>)[signature.TagArg, signature.PoolTypeArg, signature.PoolFlagsArg])
                proves |= a >= 0 && w.Args[a].IsKnown && !w.Site.Arg(a).IsKnown;
            if (!proves) continue;
            var api = w.Site.Api;
            ref var next = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(ordinals, (api.Key, w.CallerFunction), out _);
            var args = new ulong?[CallSite.TrackedArgs];
            for (var a = 0; a < args.Length; a++) args[a] = w.Args[a] is { IsKnown: true } v ? v.Value : null;
            var shape = w.Via.Count > 0 ? CallShape.Wrapper : (w.Site.Shape & CallSiteShape.TailCall) != 0 ? CallShape.TailJump : CallShape.Thunk;
            var via = w.Via.Count == 0 ? null
                : string.Join(" → ", w.Via.Select((h, k) => k == 0 ? $"wrapper 0x{h.WrapperRva:x}" : $"call at 0x{h.CallRva:x} → wrapper 0x{h.WrapperRva:x}"))
                  + $" → {api.Name} at 0x{w.Site.SiteRva:x}";
            result.Add(new CallFact(api, w.CallerSiteRva, w.CallerFunction, next++, args, shape) { Via = via });
        }
        return result;
    }

    /// <summary>Maps call sites to facts; the ordinal numbers sites of one API within one function in address order.</summary>
    internal static IReadOnlyList<CallFact> BuildCalls(IReadOnlyList<CallSite> sites)
    {
        // One key string per import, not per site (a large driver has thousands of sites).
        var keys = new Dictionary<ImportFact, string>(ReferenceEqualityComparer.Instance);
        var ordinals = new Dictionary<(string, uint?), int>();
        var result = new List<CallFact>(sites.Count);
        foreach (var site in InAddressOrder(sites))
        {
            ref var apiKey = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(keys, site.Api, out var had);
            if (!had) apiKey = site.Api.Key;
            var key = (apiKey!, site.FunctionStartRva);
            ref var next = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(ordinals, key, out _);
            var ordinal = next++;
            var args = new ulong?[CallSite.TrackedArgs];
            for (var a = 0; a < args.Length; a++) args[a] = site.Arg(a) is { IsKnown: true } v ? v.Value : null;
            var shape = (site.Shape & CallSiteShape.TailCall) != 0 ? CallShape.TailJump
                : (site.Shape & CallSiteShape.ViaThunk) != 0 ? CallShape.Thunk
                : (site.Shape & CallSiteShape.ViaRegister) != 0 ? CallShape.Register
                : CallShape.Direct;
            result.Add(new CallFact(site.Api, site.SiteRva, site.FunctionStartRva, ordinal, args, shape));
        }
        return result;
    }

    /// <summary>Ordinals count sites in address order; the finder already sorts, so this rarely copies.</summary>
    private static IEnumerable<CallSite> InAddressOrder(IReadOnlyList<CallSite> sites)
    {
        for (var i = 1; i < sites.Count; i++)
            if (sites[i - 1].SiteRva > sites[i].SiteRva) return sites.OrderBy(s => s.SiteRva);
        return sites;
    }

    private SignatureFact? BuildSignature()
    {
        var info = Signing.Signatures;
        if (!info.IsSigned) return null;
        var signers = info.AllSigners.Select(s => new SignerFact(
            s.Subject ?? "", s.Issuer ?? "", s.SerialNumber ?? "", s.Thumbprint ?? "",
            s.NotBefore ?? DateTimeOffset.MinValue, s.NotAfter ?? DateTimeOffset.MaxValue, s.IsTestCertificate)).ToList();
        var primary = info.Signatures[0];
        return new SignatureFact(signers, primary.ContentDigestAlgorithmName, primary.ContentDigest);
    }

    private static ModuleFact BuildModule(ImageOrigin origin) => origin.IsDumpModule
        ? DumpModuleFacts.Provenance(origin.ModuleName!, origin.ModuleFullPath ?? origin.ModuleName!, origin.ModuleBase)
        : new ModuleFact("file", Path.GetFileName(origin.Path), origin.Path, null);

    private IReadOnlyDictionary<string, string> BuildVersionInfo()
    {
        var map = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var s in _image.VersionInfo.Strings) map.TryAdd(s.Key, s.Value); // first table wins
        return map;
    }

    public bool? GetCharacteristic(string name) => name switch
    {
        Characteristics.IatInExecutableSection => IatInExecutableSection(),
        Characteristics.HasStackCookie => HasStackCookie(),
        Characteristics.Cfg => Cfg(),
        Characteristics.ForceIntegrity => (_image.DllCharacteristics & DllCharacteristicsForceIntegrity) != 0,
        Characteristics.NxCompat => (_image.DllCharacteristics & DllCharacteristicsNxCompat) != 0,
        Characteristics.Signed => Signed(),
        Characteristics.Packed => Code.Supported ? Code.Packed is not null : null,
        _ => null, // the rule validator refuses unknown names; nothing to know here
    };

    private bool? IatInExecutableSection()
    {
        uint rva;
        if (Iat?.IatRva is { } found)
            rva = found; // where the IAT was found in memory (the descriptors used below may be gone)
        else if (_image.IatDirectory.VirtualAddress != 0)
            rva = _image.IatDirectory.VirtualAddress;
        else
        {
            var imports = _image.Imports;
            if (imports.FirstThunkRva is { } first) rva = first;
            else if (imports.Status == PeTableStatus.Absent) return false; // no imports: no IAT to sit anywhere
            else return null;
        }
        var section = _image.FindSection(rva);
        return section is not null && section.Executable;
    }

    /// <summary>
    /// /GS as the compiler emits it: the load configuration names a security cookie, or (WDK 7-era drivers,
    /// GsDriverEntry, no load configuration) the image holds the /GS default cookie value in a data section and
    /// its code reads that variable (see <see cref="StackCookie"/>). Unknown when neither can be decided.
    /// </summary>
    private bool? HasStackCookie()
    {
        var config = _image.LoadConfig;
        bool? fromConfig = config.Status switch
        {
            PeTableStatus.Absent => false,
            PeTableStatus.Unreadable => null,
            _ => config.SecurityCookie is { } cookie ? cookie != 0 : config.Status == PeTableStatus.Ok ? false : null,
        };
        if (fromConfig == true) return true;
        return StackCookie.FromCode(_image, Code) switch
        {
            true => true,
            null => null,
            false => fromConfig,
        };
    }

    private bool? Cfg()
    {
        if ((_image.DllCharacteristics & DllCharacteristicsGuardCf) == 0) return false;
        var config = _image.LoadConfig;
        if (config.Status == PeTableStatus.Absent) return false;
        if (config.GuardFlags is { } flags) return (flags & PeLoadConfig.GuardCfInstrumented) != 0;
        return config.Status == PeTableStatus.Ok ? false : null;
    }

    private bool? Signed()
    {
        var dir = _image.GetDirectory(4);
        if (!dir.IsPresent) return false;
        if (_image.Layout != ImageLayout.File) return null; // the table is not mapped: cannot tell from memory
        return _image.Certificates.Entries.Count > 0;
    }

    private SectionFact[] BuildSections()
    {
        var sections = _image.Sections;
        var result = new SectionFact[sections.Count];
        for (var i = 0; i < result.Length; i++)
        {
            var s = sections[i];
            result[i] = new SectionFact(s.Index, s.Name, s.Rva, s.VirtualSize, s.RawSize, s.Characteristics);
        }
        return result;
    }

    /// <summary>The facts of an image's import and delay-import tables, in table order, each with its IAT slot.</summary>
    public static ImportFact[] ImportsOf(PeImage image)
    {
        var normal = image.Imports.Imports;
        var delayed = image.DelayImports.Imports;
        var result = new ImportFact[normal.Count + delayed.Count];
        var n = 0;
        foreach (var i in normal) result[n++] = new ImportFact(i.Module, i.Name, i.Ordinal, false, i.SlotRva);
        foreach (var i in delayed) result[n++] = new ImportFact(i.Module, i.Name, i.Ordinal, true, i.SlotRva);
        return result;
    }

    private ExportFact[] BuildExports()
    {
        var all = _image.Exports.All;
        var result = new ExportFact[all.Count];
        for (var i = 0; i < result.Length; i++)
            result[i] = new ExportFact(all[i].Name, all[i].Ordinal, all[i].Rva, all[i].Forwarder);
        return result;
    }

    private static string DefaultDisplayName(ImageOrigin origin) =>
        origin.ModuleName is { } module ? Inputs.DumpModuleTarget.ModulePath(Path.GetFileName(origin.Path), module) : origin.Path;
}
