from allauth.account.adapter import DefaultAccountAdapter


class BrokerageAccountAdapter(DefaultAccountAdapter):
    """Brokers add people through the brokerage import or admin; nobody signs themselves up."""

    def is_open_for_signup(self, request):
        return False
