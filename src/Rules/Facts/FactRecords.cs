namespace DriverAudit.Rules.Facts;

/// <summary>
/// One imported function, from the import table of a file or the resolved IAT of a dump module: the same fact
/// feeds rules (<c>import:</c>) and the code analysis (its call sites, through <see cref="SlotRva"/>).
/// Module keeps the case it has in the image; comparisons ignore case.
/// </summary>
/// <param name="Ref">Module and name or ordinal.</param>
/// <param name="Delayed">True for delay-load imports.</param>
/// <param name="SlotRva">RVA of the IAT slot this import is bound through, when known.</param>
public sealed record ImportFact(ImportRef Ref, bool Delayed, uint? SlotRva = null)
{
    public ImportFact(string module, string? name, int? ordinal, bool delayed, uint? slotRva = null)
        : this(new ImportRef(module, name, ordinal), delayed, slotRva) { }

    /// <summary>DLL name as written in the import table, e.g. "ntoskrnl.exe".</summary>
    public string Module => Ref.Module;

    /// <summary>Function name; null for an import by ordinal.</summary>
    public string? Name => Ref.Name;

    /// <summary>Ordinal for an import by ordinal; null for an import by name.</summary>
    public int? Ordinal => Ref.Ordinal;

    /// <summary>Stable anchor, e.g. "ntoskrnl.exe!ExAllocatePool" or "hal.dll!#12" (module lower-cased).</summary>
    public string Key => Ref.Key;
}

/// <summary>One exported symbol.</summary>
public sealed record ExportFact(string? Name, int Ordinal, uint Rva, string? Forwarder);

/// <summary>One section header, as the image declares it.</summary>
public sealed record SectionFact(int Index, string Name, uint Rva, uint VirtualSize, uint RawSize, uint Characteristics)
{
    public const uint MemDiscardable = 0x02000000, MemExecute = 0x20000000, MemRead = 0x40000000, MemWrite = 0x80000000;
    public const uint CntCode = 0x00000020;

    public bool Readable => (Characteristics & MemRead) != 0;
    public bool Writable => (Characteristics & MemWrite) != 0;
    public bool Executable => (Characteristics & (MemExecute | CntCode)) != 0;
    public bool Discardable => (Characteristics & MemDiscardable) != 0;
    public bool PageAligned => Rva % 0x1000 == 0;
}

/// <summary>File and optional header facts.</summary>
/// <param name="Machine">IMAGE_FILE_HEADER.Machine as read (named by <see cref="MachineNames.Name"/>).</param>
/// <param name="Subsystem">IMAGE_OPTIONAL_HEADER.Subsystem as read (named by <see cref="MachineNames.Subsystem"/>).</param>
public sealed record HeaderFact(
    ushort Machine,
    ushort Subsystem,
    bool Is64Bit,
    ushort FileCharacteristics,
    ushort DllCharacteristics,
    uint SectionAlignment,
    uint FileAlignment,
    ulong ImageBase,
    uint SizeOfImage,
    uint TimeDateStamp,
    uint CheckSum)
{
    /// <summary>"x86", "x64", "arm64", "arm" or "0x{value:x4}".</summary>
    public string MachineName => MachineNames.Name(Machine);

    /// <summary>"native", "windows-gui", ... or "0x{value:x}".</summary>
    public string SubsystemName => MachineNames.Subsystem(Subsystem);
}

/// <summary>Provenance of the image.</summary>
/// <param name="Origin">"file", "dump", or "unloaded" (a driver a dump lists as unloaded: name, base and size only).</param>
/// <param name="Name">Base name, e.g. "pool_legacy.sys" or "{GUID}.sys".</param>
/// <param name="Path">The file path as reported, or the module's FullDllName in a dump (e.g. "\SystemRoot\System32\drivers\x.sys").</param>
/// <param name="Base">DllBase in a dump; null for files.</param>
public sealed record ModuleFact(string Origin, string Name, string Path, ulong? Base);

/// <summary>A string found in a non-code section.</summary>
public sealed record StringFact(string Value, bool Utf16, uint Rva, string Section);

/// <summary>
/// Text that every string a <c>string:</c> feature can match contains (at its start when <paramref name="AtStart"/>),
/// in the encodings it looks at. Lets the scanner rule an image out with a byte search before extracting its strings.
/// </summary>
public readonly record struct StringNeedle(string Text, bool IgnoreCase, bool AtStart, bool Ascii, bool Utf16);

/// <summary>One signer of an Authenticode signature, as parsed (not verified).</summary>
public sealed record SignerFact(
    string Subject,
    string Issuer,
    string SerialNumber,
    string Thumbprint,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    bool IsTestCertificate);

/// <summary>An Authenticode signature: its signers (the primary first, then nested signatures).</summary>
/// <param name="DigestAlgorithm">e.g. "sha256".</param>
/// <param name="SignedDigest">Lower-case hex Authenticode digest the signature claims (SpcIndirectDataContent).</param>
public sealed record SignatureFact(IReadOnlyList<SignerFact> Signers, string? DigestAlgorithm, string? SignedDigest);

/// <summary>How a call site reaches its import.</summary>
public enum CallShape
{
    /// <summary><c>call [slot]</c>.</summary>
    Direct,
    /// <summary><c>mov reg, [slot]</c> … <c>call reg</c>.</summary>
    Register,
    /// <summary><c>call thunk</c> where the thunk is <c>jmp [slot]</c>.</summary>
    Thunk,
    /// <summary><c>jmp [slot]</c> as a tail call.</summary>
    TailJump,
    /// <summary>
    /// A call to the driver's own wrapper that passes the API's pool arguments on: the site is the call into the
    /// wrapper, the arguments those the API receives (see <see cref="CallFact.Via"/>).
    /// </summary>
    Wrapper,
}

/// <summary>
/// A call to an imported function. <see cref="Args"/> holds arguments 0–3 (<see cref="TrackedArgs"/>) as recovered constants;
/// null means unknown (could not be proven constant) — never a guess.
/// </summary>
/// <param name="Api">The import called.</param>
/// <param name="SiteRva">RVA of the call (or jmp) instruction.</param>
/// <param name="FunctionRva">Start of the containing function when known (x64 .pdata, or a symbol).</param>
/// <param name="Ordinal">0-based index of this site among the sites of the same API in the same function (stable anchor).</param>
public sealed record CallFact(ImportFact Api, uint SiteRva, uint? FunctionRva, int Ordinal, IReadOnlyList<ulong?> Args, CallShape Shape)
{
    /// <summary>
    /// How many leading arguments the scanner recovers (x64 passes the first four in registers; x86 pushes are
    /// tracked as far). A rule cannot ask about a later one: the compiler refuses <c>arg: {4: ...}</c>.
    /// </summary>
    public const int TrackedArgs = 4;

    /// <summary>
    /// For <see cref="CallShape.Wrapper"/>: the way from the site to the API, e.g.
    /// "wrapper 0x1000 → ExAllocatePoolWithTag at 0x1029"; null for a direct call.
    /// </summary>
    public string? Via { get; init; }

    /// <summary>Stable anchor: "ntoskrnl.exe!ExAllocatePoolWithTag@fn_0x1040#0" (function and ordinal, not the site address).</summary>
    public string Key => $"{Api.Key}@{(FunctionRva is uint f ? $"fn_0x{f:x}" : "nofn")}#{Ordinal}";
}

/// <summary>
/// A notable instruction, aggregated per function: one fact per (function, mnemonic, control register) with
/// the address of the first occurrence and how many there are.
/// </summary>
/// <param name="Rva">Address of the first such instruction in the function.</param>
/// <param name="Mnemonic">One of <see cref="InstructionNames"/>: "wrmsr", "rdmsr", "in", "out", "insb", …, "mov", "msr", "mrs".</param>
/// <param name="ControlRegister">For <c>mov crN, reg</c>: "cr0", "cr2", "cr3", "cr4", "cr8"; for msr/mrs the system register; else null.</param>
/// <param name="FunctionRva">Start of the containing function; null when no function is known (linear fallback).</param>
/// <param name="Count">How many such instructions the function holds (at least 1).</param>
public sealed record InstructionFact(uint Rva, string Mnemonic, string? ControlRegister, uint? FunctionRva, int Count = 1);

/// <summary>
/// Instruction mnemonics that do not exist on an image's architecture (port I/O and x86 MSR instructions on
/// ARM64), and why: a rule that reads code only through them cannot apply, and says so (not evaluated).
/// </summary>
public sealed record AbsentInstructionsFact(IReadOnlySet<string> Mnemonics, string Reason);
