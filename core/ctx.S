/* ctx_save / ctx_jump: see ctx.h.  x86-64 SysV: rdi = ctx, rsi = value. */
	.text
	.globl ctx_save
	.hidden ctx_save
	.type ctx_save,@function
ctx_save:
	movq %rbx, 0(%rdi)
	movq %rbp, 8(%rdi)
	movq %r12, 16(%rdi)
	movq %r13, 24(%rdi)
	movq %r14, 32(%rdi)
	movq %r15, 40(%rdi)
	leaq 8(%rsp), %rdx      /* the caller's rsp after we return */
	movq %rdx, 48(%rdi)
	movq (%rsp), %rdx       /* the return address */
	movq %rdx, 56(%rdi)
	xorl %eax, %eax
	ret
	.size ctx_save, .-ctx_save

	.globl ctx_jump
	.hidden ctx_jump
	.type ctx_jump,@function
ctx_jump:
	movq 0(%rdi), %rbx
	movq 8(%rdi), %rbp
	movq 16(%rdi), %r12
	movq 24(%rdi), %r13
	movq 32(%rdi), %r14
	movq 40(%rdi), %r15
	movq 48(%rdi), %rsp
	movq %rsi, %rax
	jmp *56(%rdi)
	.size ctx_jump, .-ctx_jump

	.section .note.GNU-stack,"",@progbits
