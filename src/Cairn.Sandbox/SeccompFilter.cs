using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Cairn.Core;

namespace Cairn.Sandbox;

/// <summary>The CPU architectures whose system-call numbers <see cref="SeccompFilter"/> knows.</summary>
public enum SeccompArchitecture
{
    X86_64,
    Aarch64,
}

/// <summary>
/// The sandbox's seccomp filter: a classic-BPF program (an array of struct sock_filter, as bwrap --seccomp
/// reads it) that makes the system calls a build has no use for and that widen the kernel's attack surface
/// or reach outside the sandbox fail with EPERM, and clone3 fail with ENOSYS (its flags live in memory, which a
/// filter cannot read; libc then falls back to clone, whose flags it can). Any other architecture's system
/// calls (i386 on x86_64, arm32 on aarch64) and the x32 ABI kill the process: their numbers differ, so the rules
/// would not hold for them. Why each rule, and what is not filtered (ptrace): docs/adr/0009-seccomp.md.
/// </summary>
public static class SeccompFilter
{
    public const int Eperm = 1;
    public const int Enosys = 38;

    public const uint RetAllow = 0x7fff0000;
    public const uint RetErrno = 0x00050000;
    public const uint RetKillProcess = 0x80000000;

    public const uint AuditArchX86_64 = 0xc000003e;
    public const uint AuditArchAarch64 = 0xc00000b7;

    /// <summary>x86_64 system calls with this bit set use the x32 ABI (same audit architecture).</summary>
    public const uint X32SyscallBit = 0x40000000;

    public const uint SetUidGid = 0x0c00; // S_ISUID | S_ISGID
    public const uint FileTypeMask = 0xf000; // S_IFMT
    public const uint CharDevice = 0x2000; // S_IFCHR
    public const uint BlockDevice = 0x6000; // S_IFBLK
    public const uint Tiocsti = 0x5412;
    public const uint Tioclinux = 0x541c;

    /// <summary>CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET; clone() masks CLONE_NEWTIME (0x80) off with the exit signal.</summary>
    public const uint CloneNamespaceFlags = 0x7e020000;

    /// <summary><see cref="CloneNamespaceFlags"/> and CLONE_NEWTIME, which unshare() does take.</summary>
    public const uint UnshareNamespaceFlags = CloneNamespaceFlags | 0x80;

    // Classic BPF opcodes (linux/filter.h).
    private const ushort LdWAbs = 0x20; // BPF_LD | BPF_W | BPF_ABS
    private const ushort AluAndK = 0x54; // BPF_ALU | BPF_AND | BPF_K
    private const ushort JeqK = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    private const ushort JgeK = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    private const ushort JsetK = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    private const ushort RetK = 0x06; // BPF_RET | BPF_K

    // struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]. Both architectures are
    // little-endian, so an argument's low 32 bits are at its offset.
    private const uint NrOffset = 0;
    private const uint ArchOffset = 4;

    private static uint ArgLow(int index) => 16 + (8 * (uint)index);

    /// <summary>System-call numbers per architecture; null where the architecture has no such call.</summary>
    private sealed record Numbers(uint AuditArch, bool HasX32, uint? Chmod, uint Fchmod, uint Fchmodat, uint Fchmodat2, uint? Mknod, uint Mknodat,
        uint Ioctl, uint CloneCall, uint Clone3, uint Unshare, uint[] Denied);

    // Denied outright: mount, umount2, pivot_root, open_tree, move_mount, fsopen, fsconfig, fsmount, fspick,
    // mount_setattr, kexec_load, kexec_file_load, init_module, finit_module, delete_module, bpf,
    // perf_event_open, userfaultfd, add_key, request_key, keyctl, setns (numbers from the kernel's syscall tables).
    private static readonly Numbers X86_64 = new(AuditArchX86_64, true, Chmod: 90, Fchmod: 91, Fchmodat: 268, Fchmodat2: 452, Mknod: 133,
        Mknodat: 259, Ioctl: 16, CloneCall: 56, Clone3: 435, Unshare: 272,
        [165, 166, 155, 428, 429, 430, 431, 432, 433, 442, 246, 320, 175, 313, 176, 321, 298, 323, 248, 249, 250, 308]);

    private static readonly Numbers Aarch64 = new(AuditArchAarch64, false, Chmod: null, Fchmod: 52, Fchmodat: 53, Fchmodat2: 452, Mknod: null,
        Mknodat: 33, Ioctl: 29, CloneCall: 220, Clone3: 435, Unshare: 97,
        [40, 39, 41, 428, 429, 430, 431, 432, 433, 442, 104, 294, 105, 273, 106, 280, 241, 282, 217, 218, 219, 268]);

    /// <summary>The architecture this process runs on, or <see cref="ErrorCode.SeccompArchitectureUnsupported"/>.</summary>
    public static SeccompArchitecture CurrentArchitecture() => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => SeccompArchitecture.X86_64,
        Architecture.Arm64 => SeccompArchitecture.Aarch64,
        var other => throw Unsupported(other.ToString()),
    };

    /// <summary>The filter program for <paramref name="architecture"/>: 8-byte struct sock_filter entries, little-endian.</summary>
    public static byte[] Build(SeccompArchitecture architecture)
    {
        var n = architecture switch
        {
            SeccompArchitecture.X86_64 => X86_64,
            SeccompArchitecture.Aarch64 => Aarch64,
            _ => throw Unsupported(architecture.ToString()),
        };

        var a = new Assembler();
        a.Emit(LdWAbs, ArchOffset);
        a.Jump(JeqK, n.AuditArch, null, "kill");
        a.Emit(LdWAbs, NrOffset);
        if (n.HasX32) a.Jump(JgeK, X32SyscallBit, "kill", null);
        foreach (var nr in n.Denied) a.Jump(JeqK, nr, "eperm", null);
        a.Jump(JeqK, n.Clone3, "enosys", null);
        if (n.Chmod is { } chmod) a.Jump(JeqK, chmod, "mode-arg1", null);
        a.Jump(JeqK, n.Fchmod, "mode-arg1", null);
        a.Jump(JeqK, n.Fchmodat, "mode-arg2", null);
        a.Jump(JeqK, n.Fchmodat2, "mode-arg2", null);
        if (n.Mknod is { } mknod) a.Jump(JeqK, mknod, "mknod-arg1", null);
        a.Jump(JeqK, n.Mknodat, "mknod-arg2", null);
        a.Jump(JeqK, n.Ioctl, "ioctl", null);
        a.Jump(JeqK, n.CloneCall, "clone", null);
        a.Jump(JeqK, n.Unshare, "unshare", null);
        a.Emit(RetK, RetAllow);

        // chmod(path, mode), fchmod(fd, mode); fchmodat[2](dirfd, path, mode, flags): no set-user/group-ID bits.
        // The kernel takes mode as umode_t, so only the low bits count.
        a.LoadArgument("mode-arg1", 1);
        a.Jump(JsetK, SetUidGid, "eperm", "allow");
        a.LoadArgument("mode-arg2", 2);
        a.Jump(JsetK, SetUidGid, "eperm", "allow");

        // mknod(path, mode, dev), mknodat(dirfd, path, mode, dev): FIFOs, sockets and files yes, devices no.
        a.LoadArgument("mknod-arg1", 1);
        a.Jump(JeqK, 0, "mknod-type", "mknod-type"); // both ways to the shared type test
        a.LoadArgument("mknod-arg2", 2);
        a.Label("mknod-type");
        a.Emit(AluAndK, FileTypeMask);
        a.Jump(JeqK, CharDevice, "eperm", null);
        a.Jump(JeqK, BlockDevice, "eperm", "allow");

        // ioctl(fd, cmd, ...): cmd is an unsigned int to the kernel.
        a.LoadArgument("ioctl", 1);
        a.Jump(JeqK, Tiocsti, "eperm", null);
        a.Jump(JeqK, Tioclinux, "eperm", "allow");

        // clone(flags, ...) takes the low 32 bits of flags; unshare(flags) refuses unknown high bits itself.
        a.LoadArgument("clone", 0);
        a.Jump(JsetK, CloneNamespaceFlags, "eperm", "allow");
        a.LoadArgument("unshare", 0);
        a.Jump(JsetK, UnshareNamespaceFlags, "eperm", "allow");

        a.Label("allow");
        a.Emit(RetK, RetAllow);
        a.Label("eperm");
        a.Emit(RetK, RetErrno | Eperm);
        a.Label("enosys");
        a.Emit(RetK, RetErrno | Enosys);
        a.Label("kill");
        a.Emit(RetK, RetKillProcess);
        return a.Assemble();
    }

    private static CairnException Unsupported(string architecture) => new(ErrorCode.SeccompArchitectureUnsupported,
        $"the sandbox has no seccomp filter for the {architecture} architecture (only x86_64 and aarch64): system-call numbers differ per architecture, so it will not guess",
        "build on an x86_64 or aarch64 host; adding an architecture means adding its system-call numbers to Cairn.Sandbox.SeccompFilter");

    /// <summary>Classic BPF with symbolic jump targets; null target: the next instruction.</summary>
    private sealed class Assembler
    {
        private readonly List<(ushort Code, string? True, string? False, uint K)> _code = [];
        private readonly Dictionary<string, int> _labels = new(StringComparer.Ordinal);

        public void Emit(ushort code, uint k) => _code.Add((code, null, null, k));

        public void Jump(ushort code, uint k, string? whenTrue, string? whenFalse) => _code.Add((code, whenTrue, whenFalse, k));

        public void Label(string name) => _labels.Add(name, _code.Count);

        /// <summary>Starts the block <paramref name="label"/>, which tests system-call argument <paramref name="index"/> (its low 32 bits).</summary>
        public void LoadArgument(string label, int index)
        {
            Label(label);
            Emit(LdWAbs, ArgLow(index));
        }

        public byte[] Assemble()
        {
            var bytes = new byte[_code.Count * 8];
            for (var i = 0; i < _code.Count; i++)
            {
                var (code, whenTrue, whenFalse, k) = _code[i];
                var span = bytes.AsSpan(i * 8, 8);
                BinaryPrimitives.WriteUInt16LittleEndian(span, code);
                span[2] = Offset(i, whenTrue);
                span[3] = Offset(i, whenFalse);
                BinaryPrimitives.WriteUInt32LittleEndian(span[4..], k);
            }

            return bytes;
        }

        /// <summary>Jumps are forward only, relative to the next instruction, at most 255.</summary>
        private byte Offset(int from, string? label)
        {
            if (label is null) return 0;
            var offset = _labels[label] - (from + 1);
            if (offset is < 0 or > byte.MaxValue) throw new InvalidOperationException($"seccomp jump to {label} out of range ({offset})");
            return (byte)offset;
        }
    }
}
