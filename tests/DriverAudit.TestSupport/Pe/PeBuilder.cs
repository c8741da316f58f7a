using System.Buffers.Binary;
using System.Text;
using DriverAudit.Scanner.Images;

namespace DriverAudit.TestSupport;

/// <summary>
/// Emits small synthetic PE32 / PE32+ images in file layout and loaded layout from one description, for
/// parser tests (and for dump tests that need module images). Each generated table gets its own section so a
/// test can drop or corrupt it independently; import names start on their own page (see
/// <see cref="PeBuilt.ImportNamesRva"/>) so a loaded-layout test can mark just them missing.
/// </summary>
public sealed class PeBuilder
{
    public const uint SectionAlignment = 0x1000, FileAlignment = 0x200, SizeOfHeaders = 0x400;
    public const int PeHeaderOffset = 0x80;
    public const uint TextCharacteristics = 0x60000020, RDataCharacteristics = 0x40000040, DataCharacteristics = 0xC0000040;

    private readonly List<(string Name, uint Characteristics, byte[] Content, uint? VirtualSize, uint? Rva)> _sections = [];
    private readonly (uint Rva, uint Size)[] _rawDirectories = new (uint, uint)[16];
    private readonly List<(string Module, string? Name, int? Ordinal, ushort Hint)> _imports = [];
    private readonly List<(string Module, string? Name, int? Ordinal)> _delayImports = [];
    private readonly List<(string? Name, int Ordinal, uint Rva, string? Forwarder)> _exports = [];
    private (ulong Cookie, uint GuardFlags, ulong GuardTable, ulong GuardCount, uint? Size)? _loadConfig;
    private (Guid Guid, uint Age, string Path)? _codeView;
    private (ushort[] Version, (string Key, string Value)[] Strings)? _version;
    private byte[]? _certificate;

    public PeBuilder(bool is64Bit = true)
    {
        Is64Bit = is64Bit;
        Machine = is64Bit ? (ushort)0x8664 : (ushort)0x014c;
        ImageBase = is64Bit ? 0x140000000UL : 0x10000UL;
    }

    public bool Is64Bit { get; }
    public ushort Machine { get; set; }
    public ushort Subsystem { get; set; } = 1;
    public ushort Characteristics { get; set; } = 0x0022;
    public ushort DllCharacteristics { get; set; } = 0x0160;
    public ulong ImageBase { get; set; }
    public uint TimeDateStamp { get; set; } = 0x5F5E1000;
    public uint CheckSum { get; set; } = 0x12345;
    public string ExportDllName { get; set; } = "test.sys";
    /// <summary>Use the old (VC6) VA-based delay-import descriptor form instead of dlattrRva.</summary>
    public bool DelayImportVaForm { get; set; }
    /// <summary>Mark the import section (which holds the IAT) executable.</summary>
    public bool IatInExecutableSection { get; set; }
    /// <summary>Emit data directory 12 (IAT range); when false a reader must fall back to FirstThunk.</summary>
    public bool EmitIatDirectory { get; set; } = true;
    public bool WithRelocations { get; set; }
    /// <summary>AddressOfEntryPoint (and BaseOfCode); 0 writes an image without an entry point.</summary>
    public uint EntryPoint { get; set; } = TextRva;

    /// <summary>
    /// A section with <paramref name="content"/>; placed after the previous one, or at <paramref name="rva"/> when given
    /// (gaps left between sections stay unmapped, as in images whose discarded sections were dropped).
    /// </summary>
    public PeBuilder AddSection(string name, uint characteristics, byte[] content, uint? virtualSize = null, uint? rva = null)
    {
        _sections.Add((name, characteristics, content, virtualSize, rva));
        return this;
    }

    /// <summary>
    /// Sets data directory <paramref name="index"/> as given, for tables the caller laid out itself inside its sections
    /// (the tables this builder writes set their own directory and win over this).
    /// </summary>
    public PeBuilder Directory(int index, uint rva, uint size)
    {
        _rawDirectories[index] = (rva, size);
        return this;
    }

    public PeBuilder Import(string module, params string[] names)
    {
        foreach (var n in names) _imports.Add((module, n, null, (ushort)_imports.Count));
        return this;
    }

    public PeBuilder ImportOrdinal(string module, int ordinal)
    {
        _imports.Add((module, null, ordinal, 0));
        return this;
    }

    public PeBuilder DelayImport(string module, string? name = null, int? ordinal = null)
    {
        _delayImports.Add((module, name, ordinal));
        return this;
    }

    /// <summary>An export pointing at <paramref name="rva"/> (use <see cref="TextRva"/> + n for code).</summary>
    public PeBuilder Export(string? name, int ordinal, uint rva)
    {
        _exports.Add((name, ordinal, rva, null));
        return this;
    }

    public PeBuilder Forwarder(string? name, int ordinal, string target)
    {
        _exports.Add((name, ordinal, 0, target));
        return this;
    }

    public PeBuilder WithLoadConfig(ulong securityCookie, uint guardFlags = 0, ulong guardCfFunctionTable = 0, ulong guardCfFunctionCount = 0, uint? size = null)
    {
        _loadConfig = (securityCookie, guardFlags, guardCfFunctionTable, guardCfFunctionCount, size);
        return this;
    }

    public PeBuilder WithCodeView(Guid guid, uint age, string pdbPath)
    {
        _codeView = (guid, age, pdbPath);
        return this;
    }

    public PeBuilder WithVersion(ushort[] fileVersion, params (string Key, string Value)[] strings)
    {
        _version = (fileVersion, strings);
        return this;
    }

    public PeBuilder WithCertificate(byte[] payload)
    {
        _certificate = payload;
        return this;
    }

    /// <summary>RVA of the first section (the default .text when no section was added).</summary>
    public const uint TextRva = 0x1000;

    public PeBuilt Build()
    {
        var sections = new List<Placed>();
        var directories = ((uint Rva, uint Size)[])_rawDirectories.Clone();
        var built = new PeBuilt(Is64Bit);
        uint nextRva = TextRva;

        void Place(string name, uint characteristics, byte[] content, uint? virtualSize = null, uint? at = null)
        {
            var vs = virtualSize ?? (uint)content.Length;
            var rva = at ?? nextRva;
            sections.Add(new Placed(name, characteristics, content, rva, vs));
            nextRva = Math.Max(nextRva, rva + Align(Math.Max(Math.Max(vs, (uint)content.Length), 1), SectionAlignment));
        }

        if (_sections.Count == 0) Place(".text", TextCharacteristics, Enumerable.Repeat((byte)0xCC, 0x100).ToArray());
        foreach (var s in _sections) Place(s.Name, s.Characteristics, s.Content, s.VirtualSize, s.Rva);

        var ptr = Is64Bit ? 8 : 4;
        var rdata = new Blob(nextRva);
        if (_loadConfig is { } lc)
        {
            var full = Is64Bit ? 148 + 4 : 92 + 4;
            var at = rdata.Reserve(full);
            built.LoadConfigRva = rdata.Base + (uint)at;
            rdata.Put32(at, lc.Size ?? (uint)full);
            if (Is64Bit)
            {
                rdata.Put64(at + 88, lc.Cookie);
                rdata.Put64(at + 128, lc.GuardTable);
                rdata.Put64(at + 136, lc.GuardCount);
                rdata.Put32(at + 144, lc.GuardFlags);
            }
            else
            {
                rdata.Put32(at + 60, (uint)lc.Cookie);
                rdata.Put32(at + 80, (uint)lc.GuardTable);
                rdata.Put32(at + 84, (uint)lc.GuardCount);
                rdata.Put32(at + 88, lc.GuardFlags);
            }
            directories[10] = (built.LoadConfigRva, (uint)(lc.Size ?? (uint)full));
        }
        if (_codeView is { } cv)
        {
            rdata.Align(4);
            var at = rdata.Reserve(28);
            built.DebugDirectoryRva = rdata.Base + (uint)at;
            rdata.Align(4);
            var data = rdata.Here;
            rdata.U32(0x53445352);
            rdata.Bytes(cv.Guid.ToByteArray());
            rdata.U32(cv.Age);
            rdata.AsciiZ(cv.Path);
            rdata.Put32(at + 4, TimeDateStamp);
            rdata.Put32(at + 12, 2);
            rdata.Put32(at + 16, rdata.Here - data);
            rdata.Put32(at + 20, data);
            directories[6] = (built.DebugDirectoryRva, 28);
        }
        if (_delayImports.Count > 0) WriteDelayImports(rdata, ptr, built, directories);
        if (rdata.Length > 0) Place(".rdata", RDataCharacteristics, rdata.ToArray());

        if (_imports.Count > 0)
        {
            var idata = new Blob(nextRva);
            WriteImports(idata, ptr, built, directories);
            Place(".idata", IatInExecutableSection ? TextCharacteristics : DataCharacteristics, idata.ToArray());
        }
        if (_exports.Count > 0)
        {
            var edata = new Blob(nextRva);
            WriteExports(edata, built);
            directories[0] = (built.ExportDirectoryRva, (uint)edata.Length);
            built.ExportDirectorySize = (uint)edata.Length;
            Place(".edata", RDataCharacteristics, edata.ToArray());
        }
        if (_version is { } version)
        {
            var rsrc = new Blob(nextRva);
            WriteVersionResource(rsrc, version.Version, version.Strings);
            built.ResourceRva = rsrc.Base;
            directories[2] = (rsrc.Base, (uint)rsrc.Length);
            Place(".rsrc", RDataCharacteristics, rsrc.ToArray());
        }
        if (WithRelocations)
        {
            var reloc = new Blob(nextRva);
            reloc.U32(TextRva);
            reloc.U32(12);
            reloc.U16((ushort)((Is64Bit ? 0xA000 : 0x3000) | 0x10));
            reloc.U16(0);
            directories[5] = (reloc.Base, (uint)reloc.Length);
            Place(".reloc", 0x42000040, reloc.ToArray());
        }

        var sizeOfImage = Align(nextRva, SectionAlignment);
        var headers = new byte[SizeOfHeaders];
        uint rawPointer = SizeOfHeaders;
        foreach (var s in sections)
        {
            s.RawSize = Align((uint)s.Content.Length, FileAlignment);
            s.RawPointer = s.RawSize == 0 ? 0 : rawPointer;
            rawPointer += s.RawSize;
        }
        var fileLength = rawPointer;
        uint certificateOffset = 0, certificateSize = 0;
        if (_certificate is not null)
        {
            certificateOffset = Align(fileLength, 8);
            certificateSize = Align(8 + (uint)_certificate.Length, 8);
            fileLength = certificateOffset + certificateSize;
            directories[4] = (certificateOffset, certificateSize);
        }
        WriteHeaders(headers, sections, directories, sizeOfImage);

        var file = new byte[fileLength];
        headers.CopyTo(file, 0);
        var loaded = new byte[sizeOfImage];
        headers.CopyTo(loaded, 0);
        foreach (var s in sections)
        {
            s.Content.CopyTo(file, s.RawPointer);
            s.Content.CopyTo(loaded, s.Rva);
            built.Sections.Add(new BuiltSection(s.Name, s.Rva, s.VirtualSize, s.RawPointer, s.RawSize, s.Characteristics));
        }
        if (_certificate is not null)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan((int)certificateOffset), 8 + (uint)_certificate.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan((int)certificateOffset + 4), 0x0200);
            BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan((int)certificateOffset + 6), 2);
            _certificate.CopyTo(file, certificateOffset + 8);
            built.CertificateOffset = certificateOffset;
            built.CertificateSize = certificateSize;
        }
        built.File = file;
        built.Loaded = loaded;
        built.SizeOfImage = sizeOfImage;
        built.ImageBase = ImageBase;
        return built;
    }

    private void WriteImports(Blob b, int ptr, PeBuilt built, (uint Rva, uint Size)[] directories)
    {
        var modules = _imports.Select(i => i.Module).Distinct().ToList();
        var descriptors = b.Reserve(20 * (modules.Count + 1));
        var intAt = new int[modules.Count];
        var iatAt = new int[modules.Count];
        for (var m = 0; m < modules.Count; m++)
            intAt[m] = b.Reserve(ptr * (_imports.Count(i => i.Module == modules[m]) + 1));
        var iatStart = b.Length;
        for (var m = 0; m < modules.Count; m++)
            iatAt[m] = b.Reserve(ptr * (_imports.Count(i => i.Module == modules[m]) + 1));
        built.IatRva = b.Base + (uint)iatStart;
        built.IatSize = (uint)(b.Length - iatStart);
        if (EmitIatDirectory) directories[12] = (built.IatRva, built.IatSize);
        b.AlignTo(0x1000); // names on their own page
        built.ImportNamesRva = b.Here;
        for (var m = 0; m < modules.Count; m++)
        {
            var d = descriptors + 20 * m;
            b.Put32(d, b.Base + (uint)intAt[m]);
            b.Put32(d + 16, b.Base + (uint)iatAt[m]);
            b.Put32(d + 12, b.Here);
            b.AsciiZ(modules[m]);
            var k = 0;
            foreach (var import in _imports.Where(i => i.Module == modules[m]))
            {
                ulong entry;
                if (import.Name is null)
                    entry = (Is64Bit ? 0x8000000000000000UL : 0x80000000UL) | (uint)import.Ordinal!.Value;
                else
                {
                    b.Align(2);
                    entry = b.Here;
                    b.U16(import.Hint);
                    b.AsciiZ(import.Name);
                }
                b.PutPtr(intAt[m] + k * ptr, entry, ptr);
                b.PutPtr(iatAt[m] + k * ptr, entry, ptr);
                built.ImportSlots.Add((modules[m], import.Name, import.Ordinal, b.Base + (uint)(iatAt[m] + k * ptr)));
                k++;
            }
        }
        built.ImportDirectoryRva = b.Base + (uint)descriptors;
        directories[1] = (built.ImportDirectoryRva, (uint)(20 * (modules.Count + 1)));
    }

    private void WriteDelayImports(Blob b, int ptr, PeBuilt built, (uint Rva, uint Size)[] directories)
    {
        if (DelayImportVaForm && Is64Bit) throw new InvalidOperationException("the VA-based delay-import form has 32-bit fields: PE32 only");
        b.Align(8);
        var modules = _delayImports.Select(i => i.Module).Distinct().ToList();
        var descriptors = b.Reserve(32 * (modules.Count + 1));
        built.DelayImportDirectoryRva = b.Base + (uint)descriptors;
        directories[13] = (built.DelayImportDirectoryRva, (uint)(32 * (modules.Count + 1)));
        var va = DelayImportVaForm ? ImageBase : 0;
        for (var m = 0; m < modules.Count; m++)
        {
            var items = _delayImports.Where(i => i.Module == modules[m]).ToList();
            b.Align(8);
            var names = b.Reserve(ptr * (items.Count + 1));
            var iat = b.Reserve(ptr * (items.Count + 1));
            var handle = b.Reserve(ptr);
            var d = descriptors + 32 * m;
            b.Put32(d, DelayImportVaForm ? 0u : 1u);
            b.Put32(d + 8, (uint)(va + b.Base + (uint)handle));
            b.Put32(d + 12, (uint)(va + b.Base + (uint)iat));
            b.Put32(d + 16, (uint)(va + b.Base + (uint)names));
            b.Put32(d + 4, (uint)(va + b.Here));
            b.AsciiZ(modules[m]);
            for (var k = 0; k < items.Count; k++)
            {
                ulong entry;
                if (items[k].Name is null)
                    entry = (Is64Bit ? 0x8000000000000000UL : 0x80000000UL) | (uint)items[k].Ordinal!.Value;
                else
                {
                    b.Align(2);
                    entry = va + b.Here;
                    b.U16(0);
                    b.AsciiZ(items[k].Name!);
                }
                b.PutPtr(names + k * ptr, entry, ptr);
                b.PutPtr(iat + k * ptr, ImageBase + TextRva, ptr); // points at the delay-load thunk before binding
                built.DelayImportSlots.Add((modules[m], items[k].Name, items[k].Ordinal, b.Base + (uint)(iat + k * ptr)));
            }
        }
    }

    private void WriteExports(Blob b, PeBuilt built)
    {
        var ordinalBase = _exports.Min(e => e.Ordinal);
        var count = _exports.Max(e => e.Ordinal) - ordinalBase + 1;
        var named = _exports.Where(e => e.Name is not null).OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        var dir = b.Reserve(40);
        built.ExportDirectoryRva = b.Base + (uint)dir;
        var functions = b.Reserve(4 * count);
        var names = b.Reserve(4 * named.Count);
        var ordinals = b.Reserve(2 * named.Count);
        b.Put32(dir + 4, TimeDateStamp);
        b.Put32(dir + 12, b.Here);
        b.AsciiZ(ExportDllName);
        b.Put32(dir + 16, (uint)ordinalBase);
        b.Put32(dir + 20, (uint)count);
        b.Put32(dir + 24, (uint)named.Count);
        b.Put32(dir + 28, b.Base + (uint)functions);
        b.Put32(dir + 32, b.Base + (uint)names);
        b.Put32(dir + 36, b.Base + (uint)ordinals);
        foreach (var e in _exports)
        {
            var slot = functions + 4 * (e.Ordinal - ordinalBase);
            if (e.Forwarder is not null)
            {
                b.Put32(slot, b.Here);
                b.AsciiZ(e.Forwarder);
            }
            else b.Put32(slot, e.Rva);
        }
        for (var i = 0; i < named.Count; i++)
        {
            b.Put32(names + 4 * i, b.Here);
            b.AsciiZ(named[i].Name!);
            b.Put16(ordinals + 2 * i, (ushort)(named[i].Ordinal - ordinalBase));
        }
    }

    private static void WriteVersionResource(Blob b, ushort[] version, (string Key, string Value)[] strings)
    {
        // Three directory levels (type 16 -> id 1 -> language 0x409) then one data entry.
        var level = new int[3];
        for (var i = 0; i < 3; i++)
        {
            level[i] = b.Reserve(16 + 8);
            b.Put16(level[i] + 14, 1);
        }
        var dataEntry = b.Reserve(16);
        b.Put32(level[0] + 16, 16);
        b.Put32(level[0] + 20, 0x80000000u | (uint)level[1]);
        b.Put32(level[1] + 16, 1);
        b.Put32(level[1] + 20, 0x80000000u | (uint)level[2]);
        b.Put32(level[2] + 16, 0x409);
        b.Put32(level[2] + 20, (uint)dataEntry);
        b.Align(4);
        var info = VersionInfoBytes(version, strings);
        b.Put32(dataEntry, b.Here);
        b.Put32(dataEntry + 4, (uint)info.Length);
        b.Bytes(info);
    }

    /// <summary>VS_VERSIONINFO with a VS_FIXEDFILEINFO and one StringFileInfo table "040904b0".</summary>
    public static byte[] VersionInfoBytes(ushort[] version, (string Key, string Value)[] strings)
    {
        var fixedInfo = new byte[52];
        BinaryPrimitives.WriteUInt32LittleEndian(fixedInfo, 0xFEEF04BD);
        BinaryPrimitives.WriteUInt32LittleEndian(fixedInfo.AsSpan(4), 0x00010000);
        var ms = ((uint)version[0] << 16) | version[1];
        var ls = ((uint)version[2] << 16) | version[3];
        BinaryPrimitives.WriteUInt32LittleEndian(fixedInfo.AsSpan(8), ms);
        BinaryPrimitives.WriteUInt32LittleEndian(fixedInfo.AsSpan(12), ls);
        BinaryPrimitives.WriteUInt32LittleEndian(fixedInfo.AsSpan(16), ms);
        BinaryPrimitives.WriteUInt32LittleEndian(fixedInfo.AsSpan(20), ls);
        var stringBlocks = strings.Select(s => VersionBlock(s.Key, Encoding.Unicode.GetBytes(s.Value + "\0"), (ushort)(s.Value.Length + 1), 1, [])).ToArray();
        var table = VersionBlock("040904b0", [], 0, 1, stringBlocks);
        var fileInfo = VersionBlock("StringFileInfo", [], 0, 1, [table]);
        return VersionBlock("VS_VERSION_INFO", fixedInfo, 52, 0, [fileInfo]);
    }

    private static byte[] VersionBlock(string key, byte[] value, ushort valueLength, ushort type, byte[][] children)
    {
        var b = new Blob(0);
        b.Reserve(6);
        b.Bytes(Encoding.Unicode.GetBytes(key + "\0"));
        b.Align(4);
        b.Bytes(value);
        foreach (var c in children)
        {
            b.Align(4);
            b.Bytes(c);
        }
        b.Put16(0, (ushort)b.Length);
        b.Put16(2, valueLength);
        b.Put16(4, type);
        return b.ToArray();
    }

    private void WriteHeaders(byte[] h, List<Placed> sections, (uint Rva, uint Size)[] directories, uint sizeOfImage)
    {
        var s = h.AsSpan();
        s[0] = (byte)'M';
        s[1] = (byte)'Z';
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x3C..], PeHeaderOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(s[PeHeaderOffset..], 0x00004550);
        var coff = s[(PeHeaderOffset + 4)..];
        var optionalSize = Is64Bit ? 240 : 224;
        BinaryPrimitives.WriteUInt16LittleEndian(coff, Machine);
        BinaryPrimitives.WriteUInt16LittleEndian(coff[2..], (ushort)sections.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(coff[4..], TimeDateStamp);
        BinaryPrimitives.WriteUInt16LittleEndian(coff[16..], (ushort)optionalSize);
        BinaryPrimitives.WriteUInt16LittleEndian(coff[18..], Characteristics);
        var o = s[(PeHeaderOffset + 24)..];
        BinaryPrimitives.WriteUInt16LittleEndian(o, Is64Bit ? (ushort)0x20b : (ushort)0x10b);
        BinaryPrimitives.WriteUInt32LittleEndian(o[16..], EntryPoint);
        BinaryPrimitives.WriteUInt32LittleEndian(o[20..], EntryPoint);
        if (Is64Bit) BinaryPrimitives.WriteUInt64LittleEndian(o[24..], ImageBase);
        else BinaryPrimitives.WriteUInt32LittleEndian(o[28..], (uint)ImageBase);
        BinaryPrimitives.WriteUInt32LittleEndian(o[32..], SectionAlignment);
        BinaryPrimitives.WriteUInt32LittleEndian(o[36..], FileAlignment);
        BinaryPrimitives.WriteUInt16LittleEndian(o[40..], 6);
        BinaryPrimitives.WriteUInt16LittleEndian(o[48..], 6);
        BinaryPrimitives.WriteUInt32LittleEndian(o[56..], sizeOfImage);
        BinaryPrimitives.WriteUInt32LittleEndian(o[60..], SizeOfHeaders);
        BinaryPrimitives.WriteUInt32LittleEndian(o[64..], CheckSum);
        BinaryPrimitives.WriteUInt16LittleEndian(o[68..], Subsystem);
        BinaryPrimitives.WriteUInt16LittleEndian(o[70..], DllCharacteristics);
        var dirs = Is64Bit ? 112 : 96;
        BinaryPrimitives.WriteUInt32LittleEndian(o[(dirs - 4)..], 16);
        for (var i = 0; i < 16; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(o[(dirs + 8 * i)..], directories[i].Rva);
            BinaryPrimitives.WriteUInt32LittleEndian(o[(dirs + 8 * i + 4)..], directories[i].Size);
        }
        var table = s[(PeHeaderOffset + 24 + optionalSize)..];
        for (var i = 0; i < sections.Count; i++)
        {
            var e = table[(40 * i)..];
            var name = Encoding.ASCII.GetBytes(sections[i].Name);
            name.AsSpan(0, Math.Min(8, name.Length)).CopyTo(e);
            BinaryPrimitives.WriteUInt32LittleEndian(e[8..], sections[i].VirtualSize);
            BinaryPrimitives.WriteUInt32LittleEndian(e[12..], sections[i].Rva);
            BinaryPrimitives.WriteUInt32LittleEndian(e[16..], sections[i].RawSize);
            BinaryPrimitives.WriteUInt32LittleEndian(e[20..], sections[i].RawPointer);
            BinaryPrimitives.WriteUInt32LittleEndian(e[36..], sections[i].Characteristics);
        }
    }

    private static uint Align(uint value, uint alignment) => (value + alignment - 1) / alignment * alignment;

    private sealed class Placed(string name, uint characteristics, byte[] content, uint rva, uint virtualSize)
    {
        public string Name { get; } = name;
        public uint Characteristics { get; } = characteristics;
        public byte[] Content { get; } = content;
        public uint Rva { get; } = rva;
        public uint VirtualSize { get; } = virtualSize;
        public uint RawSize { get; set; }
        public uint RawPointer { get; set; }
    }

    /// <summary>A growable little-endian byte buffer whose offsets map to RVAs from <see cref="Base"/>.</summary>
    private sealed class Blob(uint baseRva)
    {
        private readonly List<byte> _bytes = [];
        public uint Base { get; } = baseRva;
        public int Length => _bytes.Count;
        public uint Here => Base + (uint)_bytes.Count;
        public int Reserve(int n) { var at = _bytes.Count; _bytes.AddRange(new byte[n]); return at; }
        public void Align(int n) { while (_bytes.Count % n != 0) _bytes.Add(0); }
        public void AlignTo(int n) => Align(n);
        public void Bytes(byte[] b) => _bytes.AddRange(b);
        public void U16(ushort v) { var at = Reserve(2); Put16(at, v); }
        public void U32(uint v) { var at = Reserve(4); Put32(at, v); }
        public void AsciiZ(string s) { _bytes.AddRange(Encoding.ASCII.GetBytes(s)); _bytes.Add(0); }
        public void Put16(int at, ushort v) { _bytes[at] = (byte)v; _bytes[at + 1] = (byte)(v >> 8); }
        public void Put32(int at, uint v) { for (var i = 0; i < 4; i++) _bytes[at + i] = (byte)(v >> (8 * i)); }
        public void Put64(int at, ulong v) { for (var i = 0; i < 8; i++) _bytes[at + i] = (byte)(v >> (8 * i)); }
        public void PutPtr(int at, ulong v, int size) { if (size == 8) Put64(at, v); else Put32(at, (uint)v); }
        public byte[] ToArray() => _bytes.ToArray();
    }
}

public sealed record BuiltSection(string Name, uint Rva, uint VirtualSize, uint RawPointer, uint RawSize, uint Characteristics);

/// <summary>The two layouts of one built image, where its tables are, and helpers to corrupt both alike.</summary>
public sealed class PeBuilt(bool is64Bit)
{
    public bool Is64Bit { get; } = is64Bit;
    public byte[] File { get; internal set; } = [];
    public byte[] Loaded { get; internal set; } = [];
    public uint SizeOfImage { get; internal set; }
    public ulong ImageBase { get; internal set; }
    public List<BuiltSection> Sections { get; } = [];
    public uint ImportDirectoryRva { get; internal set; }
    public uint ImportNamesRva { get; internal set; }
    public uint IatRva { get; internal set; }
    public uint IatSize { get; internal set; }
    public uint DelayImportDirectoryRva { get; internal set; }
    public uint ExportDirectoryRva { get; internal set; }
    public uint ExportDirectorySize { get; internal set; }
    public uint LoadConfigRva { get; internal set; }
    public uint DebugDirectoryRva { get; internal set; }
    public uint ResourceRva { get; internal set; }
    public uint CertificateOffset { get; internal set; }
    public uint CertificateSize { get; internal set; }
    /// <summary>(module, name, ordinal, IAT slot RVA) in table order.</summary>
    public List<(string Module, string? Name, int? Ordinal, uint SlotRva)> ImportSlots { get; } = [];
    public List<(string Module, string? Name, int? Ordinal, uint SlotRva)> DelayImportSlots { get; } = [];

    public const int CoffOffset = PeBuilder.PeHeaderOffset + 4;
    public const int OptionalOffset = PeBuilder.PeHeaderOffset + 24;
    public int OptionalHeaderSize => Is64Bit ? 240 : 224;
    public int DirectoryOffset(int index) => OptionalOffset + (Is64Bit ? 112 : 96) + 8 * index;
    public int SectionTableOffset => OptionalOffset + OptionalHeaderSize;

    public int FileOffsetOfRva(uint rva)
    {
        foreach (var s in Sections)
            if (rva >= s.Rva && rva < s.Rva + Math.Max(s.VirtualSize, s.RawSize)) return (int)(s.RawPointer + (rva - s.Rva));
        if (rva < PeBuilder.SizeOfHeaders) return (int)rva;
        throw new ArgumentOutOfRangeException(nameof(rva));
    }

    /// <summary>Writes bytes at a header offset in both layouts (headers are identical in both).</summary>
    public PeBuilt PatchHeader(int offset, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(File.AsSpan(offset));
        bytes.CopyTo(Loaded.AsSpan(offset));
        return this;
    }

    public PeBuilt PatchHeader32(int offset, uint value) => PatchHeader(offset, BitConverter.GetBytes(value));
    public PeBuilt PatchHeader16(int offset, ushort value) => PatchHeader(offset, BitConverter.GetBytes(value));

    /// <summary>Writes bytes at an RVA in both layouts.</summary>
    public PeBuilt PatchRva(uint rva, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(File.AsSpan(FileOffsetOfRva(rva)));
        bytes.CopyTo(Loaded.AsSpan((int)rva));
        return this;
    }

    public PeBuilt PatchRva32(uint rva, uint value) => PatchRva(rva, BitConverter.GetBytes(value));
    public PeBuilt PatchRva16(uint rva, ushort value) => PatchRva(rva, BitConverter.GetBytes(value));

    public PeBuilt SetDirectory(int index, uint rva, uint size) =>
        PatchHeader32(DirectoryOffset(index), rva).PatchHeader32(DirectoryOffset(index) + 4, size);

    internal MemoryImageSource FileSource(string path = "test.sys") => new(File, ImageLayout.File, new ImageOrigin(path));

    internal MemoryImageSource LoadedSource(bool[]? missingPages = null, string module = "test.sys") =>
        new(Loaded, ImageLayout.Loaded, new ImageOrigin("MEMORY.DMP", module, ImageBase + 0xFFFF000000000000UL), missingPages);

    internal MemoryImageSource Source(ImageLayout layout) => layout == ImageLayout.File ? FileSource() : LoadedSource();
}
