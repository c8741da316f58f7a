using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Inputs;

/// <summary>What an input is. Decided once, by <see cref="InputOpener"/>, for every command.</summary>
internal enum InputClass
{
    /// <summary>A PE image: one analysis target, the file.</summary>
    PeImage,
    /// <summary>A kernel crash dump (full, summary, bitmap, range): one target per loaded module.</summary>
    KernelDump,
    /// <summary>A triage (kernel mini) dump: the modules are listed, parts of a few images are captured.</summary>
    TriageDump,
    /// <summary>A raw physical-memory image in which the kernel and its module list were found.</summary>
    RawMemoryImage,
    /// <summary>A user-mode minidump or USER crash dump: not analysable.</summary>
    UserModeDump,
    /// <summary>A memory format DriverAudit recognises and does not read (hibernation, page file, LiME, VM state).</summary>
    UnsupportedMemoryFormat,
    /// <summary>A dump or memory image that cannot be read (truncated, corrupt, encrypted, no kernel found).</summary>
    UnreadableDump,
    /// <summary>Not a PE image (no MZ or PE signature).</summary>
    NotPe,
    /// <summary>A PE image too damaged to analyse.</summary>
    MalformedPe,
    /// <summary>The file could not be opened or read.</summary>
    Unreadable,
    /// <summary>The crawl could not give a file (missing path, dangling link, loop, special file, unlistable folder).</summary>
    CrawlProblem,
}

/// <summary>
/// The one place that decides what an input is and opens it: content decides, never the name. Every command
/// (scan, inspect, tags, inventory) opens its inputs here and then walks <see cref="OpenedInput"/>'s targets:
/// the PE image, or each module of a dump with its provenance.
/// </summary>
internal static class InputOpener
{
    public const string UserModeDumpReason =
        "a user-mode dump (minidump or USER crash dump), not a kernel crash dump; DriverAudit reads MEMORY.DMP and kernel minidumps";

    /// <summary>Opens one crawler item. Never throws for IO problems: they become <see cref="InputClass.Unreadable"/>.</summary>
    public static OpenedInput Open(InputItem item)
    {
        if (item is InputProblem problem) return OpenedInput.Refused(item, InputClass.CrawlProblem, problem.Message, length: null);

        FileImageSource source;
        try
        {
            source = FileImageSource.Open(item.FullPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return OpenedInput.Refused(item, InputClass.Unreadable, e.Message, length: null);
        }

        // One read of the head, one open per file: a dump is never opened as a PE (nor hashed whole).
        Span<byte> head = stackalloc byte[MemoryImageFormat.HeadSize];
        head = head[..source.Read(0, head)];
        switch (Sniff(head, item.FullPath, source.Length))
        {
            case Sniffed.UserDump:
                var length = source.Length;
                source.Dispose();
                return OpenedInput.Refused(item, InputClass.UserModeDump, UserModeDumpReason, length);
            case Sniffed.KernelDump:
                source.Dispose();
                return OpenDump(item);
        }

        var open = PeImage.TryOpen(source);
        if (open.Image is PeImage image) return OpenedInput.Pe(item, source, image);
        return OpenedInput.Refused(item, open.Status == PeOpenStatus.NotPe ? InputClass.NotPe : InputClass.MalformedPe,
            open.Reason ?? "not a PE image", source.Length, source);
    }

    /// <summary>True when the file's first bytes, name and length say it is a dump or memory image (never hashed, never cached).</summary>
    public static bool IsDumpLike(ReadOnlySpan<byte> head, string path, long length) => Sniff(head, path, length) != Sniffed.Other;

    private enum Sniffed { Other, KernelDump, UserDump }

    /// <summary>
    /// Crash-dump signatures first, then the memory-image formats: raw memory images and the formats
    /// <see cref="KernelDump.TryOpen"/> refuses with a reason (hibernation files, LiME, ELF cores, VM state) go the dump way.
    /// </summary>
    private static Sniffed Sniff(ReadOnlySpan<byte> head, string path, long length)
    {
        if (head.Length >= 8 && (head[..8].SequenceEqual("PAGEDU64"u8) || head[..8].SequenceEqual("PAGEDUMP"u8))) return Sniffed.KernelDump;
        if (head.Length >= 4 && (head[..4].SequenceEqual("MDMP"u8) || head[..4].SequenceEqual("USER"u8))) return Sniffed.UserDump;
        return MemoryImageFormat.Identify(head, path, length) == MemoryImageKind.None ? Sniffed.Other : Sniffed.KernelDump;
    }

    private static OpenedInput OpenDump(InputItem item)
    {
        var open = KernelDump.TryOpen(item.FullPath);
        if (open.Dump is KernelDump dump)
        {
            var kind = dump.IsTriage ? InputClass.TriageDump : dump.DumpType == DumpType.RawMemory ? InputClass.RawMemoryImage : InputClass.KernelDump;
            return OpenedInput.OfDump(item, kind, dump);
        }
        var refused = open.Error switch
        {
            DumpOpenError.UserModeDump => InputClass.UserModeDump,
            DumpOpenError.UnsupportedFormat => InputClass.UnsupportedMemoryFormat,
            _ => InputClass.UnreadableDump,
        };
        return OpenedInput.Refused(item, refused, open.Message, LengthOf(item.FullPath));
    }

    private static long? LengthOf(string path)
    {
        try { return new FileInfo(path).Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}

/// <summary>
/// An input as <see cref="InputOpener"/> found it: a PE image, a dump with its module targets, or the reason it is
/// not analysable. Owns what it opened; dispose it when done.
/// </summary>
internal sealed class OpenedInput : IDisposable
{
    private DumpExportCatalog? _catalog;
    private IReadOnlyList<DumpModuleTarget>? _modules;
    private int _duplicates;

    private OpenedInput(InputItem item, InputClass kind) { Item = item; Class = kind; }

    public InputItem Item { get; }
    public InputClass Class { get; }

    /// <summary>The file's bytes, for PE images and files that are not (hashing them); null for dumps.</summary>
    public FileImageSource? Source { get; private init; }

    /// <summary>The image, for <see cref="InputClass.PeImage"/>.</summary>
    public PeImage? Image { get; private init; }

    /// <summary>The dump, for <see cref="InputClass.KernelDump"/>, <see cref="InputClass.TriageDump"/> and <see cref="InputClass.RawMemoryImage"/>.</summary>
    public KernelDump? Dump { get; private init; }

    /// <summary>Why the input is not analysable (null when it is): "no MZ signature", the dump reader's message…</summary>
    public string? Reason { get; private init; }

    /// <summary>The file's length when known.</summary>
    public long? Length { get; private init; }

    public bool Analysable => Image is not null || Dump is not null;

    /// <summary>One line for people: "'x.sys' is not analysable: no MZ signature". Null when analysable.</summary>
    public string? RefusalMessage => Class switch
    {
        _ when Analysable => null,
        InputClass.CrawlProblem => Reason,
        InputClass.Unreadable => $"cannot read '{Item.DisplayPath}': {Reason}",
        InputClass.UserModeDump => $"'{Item.DisplayPath}' is {Reason}. Not analysed.",
        _ => $"'{Item.DisplayPath}' is not analysable: {Reason}",
    };

    /// <summary>How the classification is named in messages and JSON.</summary>
    public static string Describe(InputClass kind) => kind switch
    {
        InputClass.PeImage => "PE image",
        InputClass.KernelDump => "kernel dump",
        InputClass.TriageDump => "triage dump",
        InputClass.RawMemoryImage => "raw memory image",
        InputClass.UserModeDump => "user-mode dump",
        InputClass.UnsupportedMemoryFormat => "unsupported memory format",
        InputClass.UnreadableDump => "unreadable dump",
        InputClass.NotPe => "not a PE image",
        InputClass.MalformedPe => "malformed PE image",
        InputClass.Unreadable => "unreadable file",
        _ => "not found or not a file",
    };

    /// <summary>The dump's export tables (built once, shared by every module's IAT resolution).</summary>
    public DumpExportCatalog Catalog => _catalog ??= new DumpExportCatalog(Dump ?? throw new InvalidOperationException("not a dump"));

    /// <summary>
    /// The dump's loaded modules in list order, each once: a damaged list can name a module twice (same name, base,
    /// size and path), and one analysis is enough. Empty for inputs that are not dumps.
    /// </summary>
    public IReadOnlyList<DumpModuleTarget> Modules => _modules ??= BuildModules();

    /// <summary>How many entries of the module list repeated an earlier one (left out of <see cref="Modules"/>).</summary>
    public int DuplicateModules { get { _ = Modules; return _duplicates; } }

    private List<DumpModuleTarget> BuildModules()
    {
        var list = new List<DumpModuleTarget>();
        if (Dump is not KernelDump dump) return list;
        var seen = new HashSet<(string Name, ulong Base, uint Size, string Path)>();
        foreach (var module in dump.Modules)
        {
            if (!seen.Add((module.Name, module.Base, module.Size, module.FullPath))) { _duplicates++; continue; }
            list.Add(new DumpModuleTarget(this, module));
        }
        return list;
    }

    internal static OpenedInput Pe(InputItem item, FileImageSource source, PeImage image) =>
        new(item, InputClass.PeImage) { Source = source, Image = image, Length = source.Length };

    internal static OpenedInput OfDump(InputItem item, InputClass kind, KernelDump dump) =>
        new(item, kind) { Dump = dump, Length = dump.File.Length };

    internal static OpenedInput Refused(InputItem item, InputClass kind, string reason, long? length, FileImageSource? source = null) =>
        new(item, kind) { Reason = reason, Length = length, Source = source };

    public void Dispose()
    {
        Source?.Dispose();
        Dump?.Dispose();
    }
}

/// <summary>One module of an opened dump: an analysis target with its provenance (the dump, the module's base and path).</summary>
internal sealed class DumpModuleTarget
{
    private readonly OpenedInput _input;

    internal DumpModuleTarget(OpenedInput input, DumpModule module)
    {
        _input = input;
        Module = module;
    }

    public DumpModule Module { get; }

    /// <summary>"MEMORY.DMP!name.sys": how messages, reports and JSON name a module of a dump.</summary>
    public string DisplayPath => ModulePath(_input.Item.DisplayPath, Module.Name);

    /// <summary>The one spelling of a dump module's place: <c>dump!module</c>.</summary>
    public static string ModulePath(string dumpDisplayPath, string moduleName) => $"{dumpDisplayPath}!{moduleName}";

    /// <summary>The short form rules' {artifact} uses: the dump's file name only, "MEMORY.DMP!name.sys".</summary>
    public static string ModuleShortName(string dumpPath, string moduleName) =>
        ModulePath(Path.GetFileName(dumpPath.Replace('\\', '/')), moduleName);

    /// <summary>Opens the module's image as the dump holds it (pages may be missing).</summary>
    public PeOpenResult OpenImage() => PeImage.TryOpen(_input.Dump!.OpenModuleImage(Module));

    /// <summary>The facts of this module's image, imports resolved through its IAT against the dump's export tables.</summary>
    public PeFacts Facts(PeImage image) =>
        DumpModuleFacts.Create(image, Module, _input.Catalog, _input.Dump!.Machine != DumpMachine.X86, _input.Item.DisplayPath);
}
