// qstrs specific to this port
// *FORMAT-OFF*
Q(kvm)
Q(tcg)
